/** datasetcheck.ts: dataset paths checked as typed (debounced, latest answer only), the server's problem
 * as the field's, and the classification suggestion for a few repeated labels. */
import { ServerConnection } from '@jupyterlab/services';

import {
  DatasetChecker,
  IDatasetVerdict,
  MAX_SUGGESTED_LABELS,
  checkProblem,
  checkable,
  taskSuggestion
} from '../datasetcheck';
import { ICheckRequest, IHealthReport } from '../types';

function report(train: Record<string, number> | null, rows = 0): IHealthReport {
  return {
    findings: [],
    counts: {},
    rows: { train: rows },
    labels: train === null ? null : { train, imbalance_ratio: 1 },
    sources: { train: 'data/train.jsonl' },
    units: { train: 'line' },
    threshold: 0.8,
    seconds: 0.01
  };
}

/** A REST error as requestAPI throws it: the server's message and its status. */
function restError(status: number, message: string): Error {
  return new ServerConnection.ResponseError(new Response(JSON.stringify({ message }), { status }), message);
}

describe('taskSuggestion', () => {
  it('suggests classification for a few repeated labels, naming them and the counts', () => {
    const s = taskSuggestion(report({ Cardiology: 8, Neurology: 6, Urology: 4 }, 18));
    expect(s?.task).toBe('classification');
    expect(s?.reason).toContain('3 labels repeated over 18 rows');
    expect(s?.reason).toContain('"Cardiology", "Neurology", "Urology"');
  });

  it('suggests nothing for free answers, one label, too many labels or labels seen about once', () => {
    expect(taskSuggestion(report(null))).toBeNull(); // the server: not labels
    expect(taskSuggestion(report({ yes: 10 }))).toBeNull();
    const many = Object.fromEntries([...Array(MAX_SUGGESTED_LABELS + 1).keys()].map(i => [`l${i}`, 5]));
    expect(taskSuggestion(report(many))).toBeNull();
    expect(taskSuggestion(report({ a: 1, b: 1, c: 2 }))).toBeNull(); // 4 rows over 3 labels
  });
});

describe('checkProblem', () => {
  it("is the server's message for a missing file, a folder or rows it refuses, without the request's field", () => {
    expect(checkProblem(restError(404, "'path': no file 'data/trian.jsonl' under the server's root"))).toBe(
      "no file 'data/trian.jsonl' under the server's root"
    );
    expect(checkProblem(restError(400, "'path': 'data' is a folder; name a data file"))).toBe(
      "'data' is a folder; name a data file"
    );
    expect(checkProblem(restError(400, 'data/x.jsonl line 2: no output_text'))).toBe(
      'data/x.jsonl line 2: no output_text'
    );
  });

  it('is null when the server cannot tell: outside its root, hidden, a server error, the network', () => {
    expect(
      checkProblem(restError(400, "'path': '/etc/x.jsonl' lies outside the server's root; name a file"))
    ).toBeNull();
    expect(checkProblem(restError(400, "'path': '.data/x.jsonl' is hidden; the server does not show"))).toBeNull();
    expect(checkProblem(restError(500, 'boom'))).toBeNull();
    expect(checkProblem(new TypeError('Failed to fetch'))).toBeNull();
  });

  it('leaves a path in the home folder unchecked', () => {
    expect(checkable('~/data/train.jsonl')).toBe(false);
    expect(checkable('  ')).toBe(false);
    expect(checkable('data/train.jsonl')).toBe(true);
  });
});

describe('DatasetChecker', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  function checker(answer: (request: ICheckRequest) => Promise<IHealthReport>) {
    const requests: string[] = [];
    const verdicts: [string, string, IDatasetVerdict][] = [];
    const c = new DatasetChecker(
      request => {
        requests.push(request.path);
        return answer(request);
      },
      (field, path, verdict) => verdicts.push([field, path, verdict]),
      100
    );
    return { c, requests, verdicts };
  }

  async function settle(): Promise<void> {
    for (let i = 0; i < 5; i++) {
      await Promise.resolve();
    }
  }

  it('checks once typing pauses, only the last path', async () => {
    const { c, requests, verdicts } = checker(async () => report({ a: 3, b: 3 }, 6));
    for (const path of ['d', 'da', 'data/t.jsonl']) {
      c.schedule('train_dataset', path, true);
      jest.advanceTimersByTime(50);
    }
    expect(requests).toEqual([]);
    expect(c.pending('train_dataset')).toBe(true);
    jest.advanceTimersByTime(100);
    await settle();
    expect(requests).toEqual(['data/t.jsonl']);
    expect(verdicts).toHaveLength(1);
    expect(verdicts[0][2].problem).toBeNull();
    expect(verdicts[0][2].suggestion?.task).toBe('classification');
    expect(c.pending('train_dataset')).toBe(false);
  });

  it("shows the server's problem, and no suggestion for validation data", async () => {
    const { c, verdicts } = checker(async request => {
      if (request.path.includes('missing')) {
        throw restError(404, "'path': no file 'missing.jsonl' under the server's root");
      }
      return report({ a: 3, b: 3 }, 6);
    });
    c.schedule('train_dataset', 'missing.jsonl', true);
    c.schedule('validation_dataset', 'val.jsonl', false);
    jest.advanceTimersByTime(100);
    await settle();
    const byField = Object.fromEntries(verdicts.map(([field, , v]) => [field, v]));
    expect(byField.train_dataset).toEqual({
      problem: "no file 'missing.jsonl' under the server's root",
      suggestion: null
    });
    expect(byField.validation_dataset).toEqual({ problem: null, suggestion: null });
  });

  it('drops an answer that comes back after the path changed', async () => {
    let release: (r: IHealthReport) => void = () => undefined;
    const { c, verdicts } = checker(request =>
      request.path === 'slow.jsonl' ? new Promise(resolve => (release = resolve)) : Promise.resolve(report(null))
    );
    c.schedule('train_dataset', 'slow.jsonl', true);
    jest.advanceTimersByTime(100);
    await settle();
    c.schedule('train_dataset', 'fast.jsonl', true);
    jest.advanceTimersByTime(100);
    await settle();
    release(report({ a: 5, b: 5 }, 10));
    await settle();
    expect(verdicts.map(([, path]) => path)).toEqual(['fast.jsonl']);
  });

  it('clears at once (no request) for an empty path', () => {
    const { c, requests, verdicts } = checker(async () => report(null));
    c.schedule('train_dataset', '', true);
    expect(verdicts).toEqual([['train_dataset', '', { problem: null, suggestion: null }]]);
    jest.advanceTimersByTime(200);
    expect(requests).toEqual([]);
  });
});
