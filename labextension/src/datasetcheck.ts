/**
 * Dataset paths checked as they are typed: a moment after the last key press the path goes to POST
 * check-dataset (the server reads the file as jt.tune would), and the answer comes back as the field's
 * problem (no such file, a folder, rows the loader refuses) or, for training data whose answers are a few
 * repeated labels, a suggestion to tune a classification head. No DOM here: the panel shows the verdicts.
 */
import { ICheckRequest, IHealthReport } from './types';

/** How long after the last key press a path is checked (ms). */
export const CHECK_DELAY_MS = 500;
/** At most this many distinct training answers make the classification suggestion ("a few labels"). */
export const MAX_SUGGESTED_LABELS = 20;
/** Each label must come back on average this many times (labels, not free answers that repeat by chance). */
export const MIN_ROWS_PER_LABEL = 2;

/** Methods that cannot train a label head (params.py refuses task='classification' with them). */
export const NO_HEAD_METHODS: readonly string[] = ['dpo', 'grpo'];

/** Task = classification for training answers that are a few repeated labels, and why. */
export interface ITaskSuggestion {
  task: 'classification';
  reason: string;
}

/** What a check found: the field's problem (null: none) and, for training data, a task suggestion. */
export interface IDatasetVerdict {
  problem: string | null;
  suggestion: ITaskSuggestion | null;
}

/** What the check route answers: a health report, or an error with the server's message. */
export type CheckFunction = (request: ICheckRequest) => Promise<IHealthReport>;

/** The suggestion a training set's health report makes (null: its answers are not a few repeated labels). */
export function taskSuggestion(report: IHealthReport): ITaskSuggestion | null {
  const train = report.labels?.train;
  if (typeof train !== 'object' || train === null) {
    return null; // the server found the answers too many or too varied to be labels
  }
  const counts = Object.entries(train as Record<string, unknown>).filter(
    (entry): entry is [string, number] => typeof entry[1] === 'number'
  );
  const rows = counts.reduce((sum, [, n]) => sum + n, 0);
  if (counts.length < 2 || counts.length > MAX_SUGGESTED_LABELS || rows < MIN_ROWS_PER_LABEL * counts.length) {
    return null;
  }
  const shown = counts
    .slice(0, 3)
    .map(([label]) => JSON.stringify(label.length > 30 ? `${label.slice(0, 30)}…` : label))
    .join(', ');
  const more = counts.length > 3 ? ', …' : '';
  return {
    task: 'classification',
    reason:
      `Suggested: the training answers are ${counts.length} labels repeated over ${rows} rows (${shown}${more}), ` +
      'so a label head (Task = classification) fits them. Choose generation to keep written answers.'
  };
}

/** The server's check-dataset fields, as the user gave them. */
const REQUEST_FIELD = /^'(path|validation_path)':\s*/;

/**
 * The field's problem from a failed check: the server's message for a missing file, a folder or rows the
 * loader refuses (400 or 404); null when the server cannot tell (a file outside its root or hidden from it,
 * which the kernel may still read; the network; a server error).
 */
export function checkProblem(error: unknown): string | null {
  const status = (error as { response?: { status?: number } } | null)?.response?.status;
  if (status !== 400 && status !== 404) {
    return null;
  }
  const message = error instanceof Error ? error.message : String(error);
  if (/outside the server's root|is hidden/.test(message)) {
    return null;
  }
  return message.replace(REQUEST_FIELD, '');
}

/** Whether a path can be checked by the server (its root names it): not empty, not a home folder path. */
export function checkable(path: string): boolean {
  const trimmed = path.trim();
  return trimmed !== '' && !trimmed.startsWith('~');
}

/**
 * Checks each dataset field's path a moment after its last change; only the latest path's answer is
 * reported (an earlier one that arrives late is dropped).
 */
export class DatasetChecker {
  constructor(
    private check: CheckFunction,
    private report: (field: string, path: string, verdict: IDatasetVerdict) => void,
    private delayMs = CHECK_DELAY_MS
  ) {}

  /**
   * Check `path` (as the server's root names it) for field `field` after the delay; `suggest`: look at its
   * labels (training data). An uncheckable or empty path reports no problem at once.
   */
  schedule(field: string, path: string, suggest: boolean): void {
    const turn = (this.turns.get(field) ?? 0) + 1;
    this.turns.set(field, turn);
    this.running.delete(field); // an earlier check's answer no longer counts
    clearTimeout(this.timers.get(field));
    this.timers.delete(field);
    if (!checkable(path)) {
      this.report(field, path, { problem: null, suggestion: null });
      return;
    }
    this.timers.set(
      field,
      setTimeout(() => void this.run(field, path, suggest, turn), this.delayMs)
    );
  }

  /** Whether a check of `field` is waiting or under way. */
  pending(field: string): boolean {
    return this.timers.has(field) || this.running.has(field);
  }

  dispose(): void {
    this.timers.forEach(timer => clearTimeout(timer));
    this.timers.clear();
    this.turns.clear();
    this.disposed = true;
  }

  private async run(field: string, path: string, suggest: boolean, turn: number): Promise<void> {
    this.timers.delete(field);
    this.running.add(field);
    let verdict: IDatasetVerdict;
    try {
      const report = await this.check({ path });
      verdict = { problem: null, suggestion: suggest ? taskSuggestion(report) : null };
    } catch (error) {
      verdict = { problem: checkProblem(error), suggestion: null };
    }
    if (this.turns.get(field) === turn) {
      this.running.delete(field);
      if (!this.disposed) {
        this.report(field, path, verdict);
      }
    }
  }

  private turns = new Map<string, number>();
  private timers = new Map<string, ReturnType<typeof setTimeout>>();
  private running = new Set<string>();
  private disposed = false;
}
