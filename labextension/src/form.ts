/**
 * The panel's form, rendered from GET schema's parameter declarations: a label, an input (a select
 * for choices, text otherwise: a number input hides what was typed), a folder button for datasets,
 * a line that shows the field's problem as the user types (or the server's, for a dataset path) and a
 * note line (why the panel chose a value). Enter in a text field submits (the panel's Tune).
 */
import { folderIcon } from '@jupyterlab/ui-components';

import { Parsed, choiceKey, parseText, showValue } from './check';
import { button, el } from './dom';
import { IParameter } from './types';

/** The path (as the kernel will read it) of the file selected in the file browser, or null. */
export type FilePicker = () => string | null;

/** One form field: its schema entry, its input and the line that shows its problem. */
interface IField {
  param: IParameter;
  row: HTMLDivElement;
  input: HTMLInputElement | HTMLSelectElement;
  error: HTMLDivElement;
  note: HTMLDivElement;
  touched: boolean; // the user changed it: a settings default no longer replaces it
  /** The server's problem with the value as it is now (a dataset path that names no file), or null. */
  checkProblem: string | null;
}

export interface IParameterFormOptions {
  /** The file browser's selection, for the dataset fields' folder button; null: no button. */
  pickFile?: FilePicker | null;
  /** Where the form reports a problem that is not one field's (null clears it). */
  reportError: (message: string | null) => void;
  /** Enter pressed in a text field (null: Enter does nothing). */
  onSubmit?: (() => void) | null;
}

/** A form of parameters; `values()` reads them typed and checked. */
export class ParameterForm {
  /** The <form> element, to put in the panel. */
  readonly node: HTMLFormElement;

  constructor(
    parameters: IParameter[],
    private options: IParameterFormOptions
  ) {
    this.node = el('form', 'jp-TuningPanel-form');
    this.node.addEventListener('submit', e => e.preventDefault());
    this.node.addEventListener('keydown', e => this.onKeyDown(e));
    for (const param of parameters) {
      this.node.appendChild(this.renderField(param));
    }
  }

  /** Show `value` in field `name` unless the user changed that field (a settings default). */
  setDefault(name: string, value: unknown): void {
    const field = this.fields.get(name);
    if (field && !field.touched) {
      field.input.value = inputText(field.param, value ?? field.param.default);
    }
  }

  /** Put `value` in field `name` as if the user typed it (a command's argument); its problem, if any, shows
   * at the field. Throws for a field the form does not have. */
  setValue(name: string, value: unknown): void {
    const field = this.fields.get(name);
    if (!field) {
      throw new Error(`The form has no field "${name}"`);
    }
    field.input.value = inputText(field.param, value);
    field.touched = true;
    field.checkProblem = null;
    field.note.hidden = true;
    this.readField(field);
    field.input.dispatchEvent(new Event('change', { bubbles: true })); // the form's watchers see it too
  }

  /** What field `name` holds as typed ('' when empty or not in the form). */
  text(name: string): string {
    return this.fields.get(name)?.input.value ?? '';
  }

  /** The field names, in the form's order. */
  get names(): string[] {
    return [...this.fields.keys()];
  }

  /** Whether the user changed field `name` (typed, chose, picked a file, or a restored value). */
  touched(name: string): boolean {
    return this.fields.get(name)?.touched ?? false;
  }

  /** The texts of the fields the user changed: what a page reload should bring back. */
  touchedTexts(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [name, field] of this.fields) {
      if (field.touched) {
        out[name] = field.input.value;
      }
    }
    return out;
  }

  /** Put saved texts back (a page reload), into fields the user has not changed since the form was drawn;
   * a text a select does not offer is left out. Returns the names restored. */
  restore(texts: Record<string, string>): string[] {
    const restored: string[] = [];
    for (const [name, text] of Object.entries(texts)) {
      const field = this.fields.get(name);
      if (!field || field.touched) {
        continue;
      }
      if (field.input instanceof HTMLSelectElement && ![...field.input.options].some(o => o.value === text)) {
        continue;
      }
      field.input.value = text;
      field.touched = true;
      this.readField(field);
      restored.push(name);
    }
    return restored;
  }

  /** The server's problem with field `name`'s current value (null clears it); shown at the field, and
   * `values()` refuses while it stands. */
  setCheckProblem(name: string, problem: string | null): void {
    const field = this.fields.get(name);
    if (field) {
      field.checkProblem = problem;
      this.readField(field);
    }
  }

  /** Show `value` in field `name` with a note saying why, unless the user changed the field; null `value`:
   * take back an earlier suggestion (the field's default again, the note gone). Returns whether it applied. */
  suggest(name: string, value: unknown, note: string | null): boolean {
    const field = this.fields.get(name);
    if (!field || field.touched) {
      return false;
    }
    field.input.value = inputText(field.param, value === null ? field.param.default : value);
    field.note.textContent = value === null ? '' : (note ?? '');
    field.note.hidden = value === null || !note;
    this.readField(field);
    return true;
  }

  /** The note shown under field `name` ('' for none). */
  note(name: string): string {
    const note = this.fields.get(name)?.note;
    return note && !note.hidden ? (note.textContent ?? '') : '';
  }

  /** Put `node` right below field `name` (at the end when the form has no such field). */
  insertAfter(name: string, node: HTMLElement): void {
    const row = this.fields.get(name)?.row;
    if (row) {
      row.after(node);
    } else {
      this.node.appendChild(node);
    }
  }

  /** The form's values; throws naming the fields that have a problem (each shown at its field). */
  values(): Record<string, unknown> {
    const values: Record<string, unknown> = {};
    const problems: string[] = [];
    for (const [name, field] of this.fields) {
      const parsed = this.readField(field);
      if ('error' in parsed) {
        problems.push(`${field.param.label}: ${parsed.error}`);
      } else {
        values[name] = parsed.value;
      }
    }
    if (problems.length) {
      throw new Error(`Check the highlighted field${problems.length > 1 ? 's' : ''}: ${problems.join('; ')}`);
    }
    return values;
  }

  private renderField(param: IParameter): HTMLDivElement {
    const id = `jp-TuningPanel-${param.name}`;
    const row = el('div', 'jp-TuningPanel-field');
    const labelNode = el('label', '', param.label);
    labelNode.htmlFor = id;
    labelNode.title = param.help;
    row.appendChild(labelNode);

    const input = param.choices ? choiceInput(param.choices) : textInput(param);
    input.id = id;
    input.name = param.name;
    input.title = param.help;
    const field: IField = {
      param,
      row,
      input,
      error: el('div', 'jp-TuningPanel-fieldError'),
      note: el('div', 'jp-TuningPanel-fieldNote'),
      touched: false,
      checkProblem: null
    };
    field.error.id = `${id}-error`;
    field.error.hidden = true;
    field.note.id = `${id}-note`;
    field.note.hidden = true;
    input.setAttribute('aria-describedby', field.error.id);
    input.value = inputText(param, param.default);
    const changed = () => {
      field.touched = true;
      field.checkProblem = null; // the server's problem was with the text before
      field.note.hidden = true; // the user's own choice: the panel's note no longer applies
      this.readField(field); // the problem shows (or goes) as the user types
    };
    input.addEventListener('input', changed);
    input.addEventListener('change', () => {
      if (!field.touched || field.input instanceof HTMLSelectElement) {
        changed();
      }
    });

    const control = el('div', 'jp-TuningPanel-control');
    const inputRow = el('div', 'jp-TuningPanel-inputRow');
    inputRow.appendChild(input);
    if (param.kind === 'dataset' && this.options.pickFile) {
      inputRow.appendChild(this.pickButton(field));
    }
    control.append(inputRow, field.error);
    row.append(control, field.note); // the note spans the form's two columns
    this.fields.set(param.name, field);
    return row;
  }

  /** The folder button beside a dataset field: the file browser's selected file goes in. */
  private pickButton(field: IField): HTMLButtonElement {
    const title = 'Use the file selected in the file browser';
    const pick = button('', title, () => this.useSelectedFile(field), 'jp-TuningPanel-pick');
    pick.setAttribute('aria-label', `${title} for ${field.param.label}`);
    pick.dataset.pickFor = field.param.name;
    folderIcon.element({ container: pick, elementPosition: 'center', height: '16px', width: '16px' });
    return pick;
  }

  private useSelectedFile(field: IField): void {
    const path = this.options.pickFile?.() ?? null;
    if (!path) {
      this.options.reportError('Select a data file in the file browser first, then click the folder button again.');
      return;
    }
    field.input.value = path;
    field.touched = true;
    field.checkProblem = null;
    this.readField(field);
    field.input.dispatchEvent(new Event('change', { bubbles: true })); // the form's watchers see it too
    this.options.reportError(null);
  }

  /** Enter in a text field: the form's submit (the panel's Tune), as its primary button would. */
  private onKeyDown(event: KeyboardEvent): void {
    const target = event.target;
    const plain = !(event.ctrlKey || event.metaKey || event.altKey || event.shiftKey);
    if (
      event.key !== 'Enter' ||
      !plain ||
      event.isComposing ||
      !(target instanceof HTMLInputElement) ||
      target.type !== 'text' ||
      !this.options.onSubmit
    ) {
      return;
    }
    event.preventDefault();
    event.stopPropagation();
    this.options.onSubmit();
  }

  /** A field's value, typed and checked as the schema says; its problem (else the server's) shows at the field. */
  private readField(field: IField): Parsed {
    let parsed = parseText(field.param, field.input.value);
    if (!('error' in parsed) && field.checkProblem !== null) {
      parsed = { error: field.checkProblem };
    }
    const problem = 'error' in parsed ? parsed.error : null;
    field.error.textContent = problem ?? '';
    field.error.hidden = problem === null;
    field.input.classList.toggle('jp-mod-invalid', problem !== null);
    field.input.setAttribute('aria-invalid', String(problem !== null));
    return parsed;
  }

  private fields = new Map<string, IField>();
}

/** A value as its input holds it: a select's option key, else the text shown. */
function inputText(param: IParameter, value: unknown): string {
  return param.choices ? choiceKey(value) : showValue(param, value);
}

function choiceInput(choices: unknown[]): HTMLSelectElement {
  const select = el('select');
  for (const choice of choices) {
    const option = el('option', '', String(choice ?? 'none'));
    option.value = choiceKey(choice);
    select.appendChild(option);
  }
  return select;
}

function textInput(param: IParameter): HTMLInputElement {
  const text = el('input');
  const numeric = param.type === 'int' || param.type === 'float';
  text.type = 'text';
  if (numeric) {
    text.inputMode = param.type === 'int' ? 'numeric' : 'decimal';
  }
  text.placeholder = param.nullable ? (numeric ? 'auto' : 'optional') : '';
  if (param.kind === 'dataset') {
    text.placeholder = 'path to .jsonl, .csv, …';
  }
  return text;
}
