/**
 * The panel's form, rendered from GET schema's parameter declarations: a label, an input (a select
 * for choices, text otherwise: a number input hides what was typed), a folder button for datasets and
 * a line that shows the field's problem as the user types.
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
  touched: boolean; // the user changed it: a settings default no longer replaces it
}

export interface IParameterFormOptions {
  /** The file browser's selection, for the dataset fields' folder button; null: no button. */
  pickFile?: FilePicker | null;
  /** Where the form reports a problem that is not one field's (null clears it). */
  reportError: (message: string | null) => void;
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
    this.readField(field);
    field.input.dispatchEvent(new Event('change', { bubbles: true })); // the form's watchers see it too
  }

  /** What field `name` holds as typed ('' when empty or not in the form). */
  text(name: string): string {
    return this.fields.get(name)?.input.value ?? '';
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
    const field: IField = { param, row, input, error: el('div', 'jp-TuningPanel-fieldError'), touched: false };
    field.error.id = `${id}-error`;
    field.error.hidden = true;
    input.setAttribute('aria-describedby', field.error.id);
    input.value = inputText(param, param.default);
    input.addEventListener('input', () => {
      field.touched = true;
      this.readField(field); // the problem shows (or goes) as the user types
    });
    input.addEventListener('change', () => (field.touched = true));

    const control = el('div', 'jp-TuningPanel-control');
    const inputRow = el('div', 'jp-TuningPanel-inputRow');
    inputRow.appendChild(input);
    if (param.kind === 'dataset' && this.options.pickFile) {
      inputRow.appendChild(this.pickButton(field));
    }
    control.append(inputRow, field.error);
    row.appendChild(control);
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
    this.readField(field);
    field.input.dispatchEvent(new Event('change', { bubbles: true })); // the form's watchers see it too
    this.options.reportError(null);
  }

  /** A field's value, typed and checked as the schema says; its problem shows at the field. */
  private readField(field: IField): Parsed {
    const parsed = parseText(field.param, field.input.value);
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
