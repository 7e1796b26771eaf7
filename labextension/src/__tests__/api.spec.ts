/**
 * api.ts against a fake fetch: each function asks its own endpoint with its own method and body,
 * reads the reply's shape, and passes the server's error message on.
 */
import { ServerConnection } from '@jupyterlab/services';

import {
  ReplyShapeError,
  cancelJob,
  checkDataset,
  deleteJob,
  getJob,
  getSchema,
  getTemplates,
  listJobs,
  makeCells
} from '../api';

interface ISent {
  method: string;
  path: string;
  body: string;
}

let sent: ISent[] = [];

/** The server answers every request with `status` and `body` (JSON unless a string). */
function serverAnswers(status: number, body?: unknown): void {
  globalThis.fetch = jest.fn(async (request: Request) => {
    const url = new URL(request.url);
    sent.push({ method: request.method, path: url.pathname, body: await request.text() });
    const text = body === undefined ? null : typeof body === 'string' ? body : JSON.stringify(body);
    return new Response(text, { status });
  }) as typeof fetch;
}

beforeEach(() => {
  sent = [];
});

const SUMMARY = { id: 'job-1', state: 'JOB_STATE_RUNNING', display_name: null };

describe('api', () => {
  it('lists the jobs with GET jobs', async () => {
    serverAnswers(200, { jobs: [SUMMARY] });
    await expect(listJobs()).resolves.toEqual([SUMMARY]);
    expect(sent).toEqual([{ method: 'GET', path: '/jupyter-tune/jobs', body: '' }]);
  });

  it('reads one job with GET jobs/<id>, the id escaped', async () => {
    serverAnswers(200, { ...SUMMARY, latest_metrics: { step: 3 } });
    const job = await getJob('job 1/x');
    expect(job.latest_metrics).toEqual({ step: 3 });
    expect(sent[0]).toMatchObject({ method: 'GET', path: '/jupyter-tune/jobs/job%201%2Fx' });
  });

  it('cancels with POST jobs/<id>:cancel', async () => {
    serverAnswers(200, { ...SUMMARY, state: 'JOB_STATE_CANCELLING' });
    await expect(cancelJob('job-1')).resolves.toMatchObject({ state: 'JOB_STATE_CANCELLING' });
    expect(sent[0]).toMatchObject({ method: 'POST', path: '/jupyter-tune/jobs/job-1:cancel' });
  });

  it('checks a dataset with POST check-dataset, passing the refusal on', async () => {
    const report = { findings: [], counts: {}, rows: { train: 3 }, labels: null, sources: { train: 'a.jsonl' } };
    serverAnswers(200, report);
    await expect(checkDataset({ path: 'a.jsonl' })).resolves.toEqual(report);
    expect(sent[0]).toEqual({ method: 'POST', path: '/jupyter-tune/check-dataset', body: '{"path":"a.jsonl"}' });
    serverAnswers(404, { message: "'path': no file 'b.jsonl' under the server's root" });
    await expect(checkDataset({ path: 'b.jsonl' })).rejects.toThrow("no file 'b.jsonl'");
    serverAnswers(200, { rows: {} });
    await expect(checkDataset({ path: 'a.jsonl' })).rejects.toThrow(ReplyShapeError);
  });

  it('deletes with DELETE jobs/<id> (204, no body)', async () => {
    serverAnswers(204);
    await expect(deleteJob('job-1')).resolves.toBeUndefined();
    expect(sent[0]).toMatchObject({ method: 'DELETE', path: '/jupyter-tune/jobs/job-1' });
  });

  it('reads the actions with GET templates', async () => {
    const actions = [{ id: 'tune', label: 'Tune a model', params: ['base_model'], button: true }];
    serverAnswers(200, { actions });
    await expect(getTemplates()).resolves.toEqual(actions);
    expect(sent[0]).toMatchObject({ method: 'GET', path: '/jupyter-tune/templates' });
  });

  it('posts the action and its params to cells', async () => {
    const cells = [{ cell_type: 'code', source: 'jt.tune()' }];
    serverAnswers(200, { cells });
    await expect(makeCells('tune', { epochs: 1, job_id: null })).resolves.toEqual(cells);
    expect(sent[0].method).toBe('POST');
    expect(sent[0].path).toBe('/jupyter-tune/cells');
    expect(JSON.parse(sent[0].body)).toEqual({ action: 'tune', params: { epochs: 1, job_id: null } });
  });

  it('reads the schema, action parameters defaulting to none from an older server', async () => {
    const states = { all: [], active: [], final: [], cancellable: [], succeeded: 'JOB_STATE_SUCCEEDED' };
    serverAnswers(200, { parameters: [], recommended_learning_rate: 0.0002, states });
    await expect(getSchema()).resolves.toMatchObject({ parameters: [], action_parameters: [], states });
    expect(sent[0]).toMatchObject({ method: 'GET', path: '/jupyter-tune/schema' });
  });

  it("throws the server's message on an error reply", async () => {
    serverAnswers(400, { message: "cells: 'epochs' must be at least 1", reason: 'CellsError' });
    const failure = makeCells('tune', { epochs: 0 });
    await expect(failure).rejects.toBeInstanceOf(ServerConnection.ResponseError);
    await expect(failure).rejects.toThrow("cells: 'epochs' must be at least 1");
  });

  it('names the status when an error reply is not JSON (a proxy page)', async () => {
    serverAnswers(502, '<html>Bad gateway</html>');
    await expect(listJobs()).rejects.toThrow(/^502/);
  });

  it('says so when a reply lacks the promised list', async () => {
    serverAnswers(200, { items: [] });
    await expect(listJobs()).rejects.toBeInstanceOf(ReplyShapeError);
    await expect(listJobs()).rejects.toThrow('GET /jupyter-tune/jobs answered without a "jobs" list');
  });

  it('turns a failed connection into a NetworkError', async () => {
    globalThis.fetch = jest.fn(async () => {
      throw new TypeError('Failed to fetch');
    }) as typeof fetch;
    await expect(getTemplates()).rejects.toBeInstanceOf(ServerConnection.NetworkError);
  });
});
