/**
 * "Tune a model" with one data file: a checkbox below the validation field offers to hold out a
 * leak-free share of the training rows for validation (the tuning cell calls jt.split).
 */
import { el } from './dom';

/** What the hold-out box needs of the form (form.ts's ParameterForm). */
export interface IFormFields {
  readonly node: HTMLElement;
  /** What field `name` holds as typed ('' when empty or absent). */
  text(name: string): string;
  /** Put `node` right below field `name`. */
  insertAfter(name: string, node: HTMLElement): void;
}

/** The share of training rows "Tune a model" holds out for validation (jt.split) without a validation file. */
export const HOLDOUT_SHARE = 0.1;

/** Methods whose rows jt.split cannot split (it stratifies labelled rows): preference pairs (dpo), prompts
 * scored by graders (grpo). The server refuses holdout for them (cells/render.py). */
export const NO_HOLDOUT_METHODS: readonly string[] = ['dpo', 'grpo'];

/** Whether the hold-out box applies: no validation file is given, and the rows are labelled rows. */
export function holdoutOffered(validationText: string, methodKey: string): boolean {
  return validationText.trim() === '' && !NO_HOLDOUT_METHODS.includes(methodKey);
}

/** The Tune action's `holdout`: the share while the box applies and is checked, else null. */
export function holdoutValue(validationText: string, methodKey: string, checked: boolean): number | null {
  return checked && holdoutOffered(validationText, methodKey) ? HOLDOUT_SHARE : null;
}

/**
 * The checkbox below the validation field: with one file only, "Tune a model" holds out a leak-free
 * share of its rows for validation (jt.split). Hidden while a validation file is given.
 */
export class HoldoutChoice {
  readonly node: HTMLDivElement;

  constructor(private form: IFormFields) {
    this.node = el('div', 'jp-TuningPanel-holdout');
    this.box = el('input');
    this.box.type = 'checkbox';
    this.box.id = 'jp-TuningPanel-holdout';
    this.box.checked = true;
    const label = el(
      'label',
      '',
      `Hold out ${Math.round(HOLDOUT_SHARE * 100)} % of the training rows for validation ` +
        '(jt.split: stratified, no duplicate across the split)'
    );
    label.htmlFor = this.box.id;
    this.node.title =
      'No validation file: the tuning cell splits the training file with jt.split, so validation ' +
      'measures rows (and inputs) the model never trained on';
    // jt.split's conflicts: what the hold-out does with an input found under two labels
    this.conflicts = el('select');
    this.conflicts.id = 'jp-TuningPanel-holdout-conflicts';
    this.conflicts.name = 'holdout_conflicts';
    for (const [value, text] of CONFLICT_CHOICES) {
      const option = el('option', '', text);
      option.value = value;
      this.conflicts.append(option);
    }
    this.conflicts.title =
      'jt.split(..., conflicts=...): the same input under two labels teaches contradicting answers';
    const conflictsLabel = el('label', '', 'Inputs under two labels:');
    conflictsLabel.htmlFor = this.conflicts.id;
    const conflictsRow = el('div', 'jp-TuningPanel-holdout-conflicts');
    conflictsRow.append(conflictsLabel, this.conflicts);
    this.node.append(this.box, label, conflictsRow);
    form.insertAfter('validation_dataset', this.node);
    for (const type of ['input', 'change']) {
      form.node.addEventListener(type, () => this.update());
    }
    this.update();
  }

  /** Show the box only while it applies (after the form's fields change). */
  update(): void {
    this.node.hidden = !holdoutOffered(this.form.text('validation_dataset'), this.form.text('method'));
  }

  /** The `holdout_conflicts` value to send with the Tune action (jt.split's conflicts). */
  conflictsValue(): string {
    return this.conflicts.value;
  }

  /** The `holdout` value to send with the Tune action. */
  value(): number | null {
    return holdoutValue(this.form.text('validation_dataset'), this.form.text('method'), this.box.checked);
  }

  private box: HTMLInputElement;
  private conflicts: HTMLSelectElement;
}

/** jt.split's `conflicts` choices, as the hold-out offers them (the server's ActionParams.holdout_conflicts). */
export const CONFLICT_CHOICES: readonly (readonly [string, string])[] = [
  ['report', 'report them (keep both)'],
  ['drop', 'drop their rows'],
  ['merge', 'merge under the most frequent label']
];

/**
 * The evaluation data: rows to score that are neither the training nor the validation file. Evaluate and
 * Generate run on them (`dataset`); Tune gives them as `test_dataset`, so the end-of-job report is measured
 * on rows that played no part in training or the checkpoint's choice.
 */
export class EvaluationData {
  readonly node: HTMLDivElement;

  constructor(form: IFormFields) {
    this.node = el('div', 'jp-TuningPanel-field jp-TuningPanel-evaldata'); // a form row: label, then input
    this.input = el('input');
    this.input.type = 'text';
    this.input.id = 'jp-TuningPanel-evaldata';
    this.input.name = 'evaluation_dataset';
    this.input.placeholder = 'e.g. data/test.jsonl';
    const label = el('label', '', 'Evaluation data');
    label.htmlFor = this.input.id;
    this.node.title =
      'Rows kept out of tuning: Evaluate and Generate run on them, and Tune scores its end-of-job report on ' +
      'them (test_dataset). Empty: Evaluate and Generate use the validation file; the training file is never used.';
    this.node.append(label, this.input);
    form.insertAfter('validation_dataset', this.node);
  }

  /** The path as typed ('' when empty). */
  value(): string {
    return this.input.value.trim();
  }

  private input: HTMLInputElement;
}
