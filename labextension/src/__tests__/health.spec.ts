/** The "Check a dataset" report (health.ts): the counts of each check, the label counts and the findings. */
import { checkCounts, labelRows, reportNode, reportTitle, summaryLine } from '../health';
import { IHealthReport } from '../types';

const REPORT: IHealthReport = {
  findings: [
    {
      kind: 'overlap',
      severity: 'warning',
      split: 'train/validation',
      lines: { train: [6], validation: [6] },
      labels: ['Urology'],
      message: 'training data/train.jsonl line 6 is also validation data/eval.jsonl line 6.',
      match: 'exact',
      similarity: null
    },
    {
      kind: 'duplicate',
      severity: 'info',
      split: 'train',
      lines: { train: [1, 13] },
      labels: ['Cardiology'],
      message: 'training data/train.jsonl lines 1, 13: the same input 2 times.',
      match: 'exact',
      similarity: null
    }
  ],
  counts: { overlap: 1, duplicate: 3 },
  rows: { train: 14, validation: 6 },
  labels: {
    train: { Cardiology: 6, Urology: 4 },
    validation: { Urology: 2, Neurology: 4 },
    imbalance_ratio: 1.5,
    only_in_train: ['Cardiology'],
    only_in_validation: ['Neurology']
  },
  sources: { train: 'data/train.jsonl', validation: 'data/eval.jsonl' },
  units: { train: 'line', validation: 'line' },
  threshold: 0.8,
  seconds: 0.2
};

describe('the health report', () => {
  it('names the files and sums up what was found', () => {
    expect(reportTitle(REPORT)).toBe('Dataset health: data/train.jsonl + data/eval.jsonl');
    expect(summaryLine(REPORT)).toBe(
      'Checked 14 training rows, 6 validation rows: 1 warning (leakage or conflicting labels), 3 notes.'
    );
    const clean = { ...REPORT, findings: [], counts: {}, rows: { train: 1 } };
    expect(summaryLine(clean)).toBe('No duplicates, conflicts or leakage in 1 training row.');
  });

  it('counts each check; leakage needs a validation file', () => {
    expect(checkCounts(REPORT).map(([kind, , n]) => [kind, n])).toEqual([
      ['overlap', 1],
      ['conflict', 0],
      ['duplicate', 3],
      ['near_duplicate', 0]
    ]);
    const trainOnly = { ...REPORT, rows: { train: 14 }, counts: { label_imbalance: 1 } };
    expect(checkCounts(trainOnly).map(([kind, , n]) => [kind, n])).toEqual([
      ['overlap', null],
      ['conflict', 0],
      ['duplicate', 0],
      ['near_duplicate', 0],
      ['label_imbalance', 1]
    ]);
  });

  it('lists the labels of each split', () => {
    expect(labelRows(REPORT)).toEqual({
      splits: ['train', 'validation'],
      rows: [
        ['Cardiology', [6, 0]],
        ['Urology', [4, 2]],
        ['Neurology', [0, 4]]
      ]
    });
    expect(labelRows({ ...REPORT, labels: null })).toBeNull();
  });

  it('draws the counts, the labels and every finding', () => {
    const node = reportNode(REPORT);
    const leak = node.querySelector('tr[data-kind="overlap"]')!;
    expect(leak.textContent).toContain('Leakage');
    expect(leak.classList.contains('jp-mod-warn')).toBe(true);
    expect(node.querySelectorAll('.jp-TuningCheck-labels tr')).toHaveLength(4);
    const findings = [...node.querySelectorAll('.jp-TuningCheck-finding')];
    expect(findings.map(f => (f as HTMLElement).dataset.severity)).toEqual(['warning', 'info']);
    expect(findings[0].textContent).toContain('data/eval.jsonl line 6');
    expect(node.textContent).toContain('2 of 4 findings listed');
    // Values go in as text, never as HTML.
    const html = reportNode({ ...REPORT, findings: [{ ...REPORT.findings[0], message: '<img src=x>' }] });
    expect(html.querySelector('img')).toBeNull();
  });
});
