/**
 * A dataset's health report (POST check-dataset, jt.check_dataset) as the "Check a dataset" dialog shows
 * it: what was checked, one line per check (leakage, conflicting labels, duplicates, near duplicates) with
 * its count, the label counts per split and every finding's message (file, lines, what to do).
 */
import { el } from './dom';
import { IHealthReport } from './types';

/** The checks every report lists, with a count (0 included), in this order. */
export const CHECKS: readonly [kind: string, label: string][] = [
  ['overlap', 'Leakage: training inputs in the validation set'],
  ['conflict', 'Conflicts: one input under different labels'],
  ['duplicate', 'Duplicates'],
  ['near_duplicate', 'Near duplicates']
];

/** Kinds listed only when found. */
const OTHER_KINDS: Record<string, string> = {
  label_imbalance: 'Label imbalance',
  label_one_split: 'Labels found in one split only'
};

const SPLIT_NAMES: Record<string, string> = { train: 'training', validation: 'validation' };

/** The dialog's title: the files checked. */
export function reportTitle(report: IHealthReport): string {
  const files = Object.values(report.sources);
  return `Dataset health: ${files.length ? files.join(' + ') : 'rows'}`;
}

/** One line: rows checked, then the warnings (leakage, conflicts) and notes found. */
export function summaryLine(report: IHealthReport): string {
  const rows = Object.entries(report.rows)
    .map(([split, n]) => `${n} ${SPLIT_NAMES[split] ?? split} row${n === 1 ? '' : 's'}`)
    .join(', ');
  const total = Object.values(report.counts).reduce((a, b) => a + b, 0);
  if (total === 0) {
    return `No duplicates, conflicts or leakage in ${rows}.`;
  }
  const warnCount = (report.counts.overlap ?? 0) + (report.counts.conflict ?? 0);
  const parts = [];
  if (warnCount) {
    parts.push(`${warnCount} warning${warnCount === 1 ? '' : 's'} (leakage or conflicting labels)`);
  }
  const notes = total - warnCount;
  if (notes) {
    parts.push(`${notes} note${notes === 1 ? '' : 's'}`);
  }
  return `Checked ${rows}: ${parts.join(', ')}.`;
}

/** [kind, label, count] for the report's table: the four checks, then any other kind found. */
export function checkCounts(report: IHealthReport): [string, string, number | null][] {
  const hasValidation = 'validation' in report.rows;
  const rows: [string, string, number | null][] = CHECKS.map(([kind, label]) => [
    kind,
    label,
    kind === 'overlap' && !hasValidation ? null : (report.counts[kind] ?? 0)
  ]);
  for (const [kind, label] of Object.entries(OTHER_KINDS)) {
    if (report.counts[kind]) {
      rows.push([kind, label, report.counts[kind]]);
    }
  }
  return rows;
}

/** The label counts per split: [label, count per split] rows, most frequent training label first. */
export function labelRows(report: IHealthReport): { splits: string[]; rows: [string, number[]][] } | null {
  const labels = report.labels;
  if (!labels) {
    return null;
  }
  const splits = Object.keys(report.rows).filter(s => typeof labels[s] === 'object' && labels[s] !== null);
  const counts = splits.map(s => labels[s] as Record<string, number>);
  const names: string[] = [];
  for (const c of counts) {
    for (const name of Object.keys(c)) {
      if (!names.includes(name)) {
        names.push(name);
      }
    }
  }
  return { splits, rows: names.map(name => [name, counts.map(c => c[name] ?? 0)]) };
}

/** The report as a node for a dialog's body. */
export function reportNode(report: IHealthReport): HTMLElement {
  const root = el('div', 'jp-TuningCheck');
  root.appendChild(el('p', 'jp-TuningCheck-summary', summaryLine(report)));

  const table = el('table', 'jp-TuningCheck-counts');
  for (const [kind, label, count] of checkCounts(report)) {
    const row = el('tr');
    row.dataset.kind = kind;
    const cell = el('td', 'jp-TuningCheck-count', count === null ? '–' : String(count));
    if (count === null) {
      cell.title = 'No validation file was checked';
    }
    row.classList.toggle('jp-mod-warn', !!count && (kind === 'overlap' || kind === 'conflict'));
    row.append(el('th', '', label), cell);
    table.appendChild(row);
  }
  root.appendChild(table);

  const labels = labelRows(report);
  if (labels) {
    root.appendChild(el('h3', 'jp-TuningCheck-heading', 'Label counts'));
    const t = el('table', 'jp-TuningCheck-labels');
    const head = el('tr');
    head.append(el('th', '', 'Label'), ...labels.splits.map(s => el('th', '', SPLIT_NAMES[s] ?? s)));
    t.appendChild(head);
    for (const [name, counts] of labels.rows) {
      const row = el('tr');
      row.append(el('td', '', name), ...counts.map(n => el('td', 'jp-TuningCheck-count', String(n))));
      t.appendChild(row);
    }
    root.appendChild(t);
    const ratio = report.labels?.imbalance_ratio;
    if (typeof ratio === 'number') {
      root.appendChild(el('p', 'jp-TuningCheck-note', `Most / least frequent training label: ${ratio}x`));
    }
  }

  if (report.findings.length) {
    root.appendChild(el('h3', 'jp-TuningCheck-heading', 'Findings'));
    const list = el('ul', 'jp-TuningCheck-findings');
    for (const finding of report.findings) {
      const item = el('li', `jp-TuningCheck-finding jp-mod-${finding.severity}`);
      item.dataset.kind = finding.kind;
      item.dataset.severity = finding.severity;
      item.append(el('span', 'jp-TuningCheck-severity', finding.severity), el('span', '', finding.message));
      list.appendChild(item);
    }
    root.appendChild(list);
    const total = Object.values(report.counts).reduce((a, b) => a + b, 0);
    if (total > report.findings.length) {
      root.appendChild(
        el(
          'p',
          'jp-TuningCheck-note',
          `${report.findings.length} of ${total} findings listed; jt.check_dataset has all.`
        )
      );
    }
  }
  return root;
}
