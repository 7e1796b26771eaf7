import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Poll } from '@lumino/polling';
import { Widget } from '@lumino/widgets';

import { requestAPI } from './request';
import { IAction, ICell, IJobStates, IJobSummary, IParameter, ISchema } from './types';

/** How the panel puts cells into a notebook; `run` executes them once inserted. */
export type CellInserter = (cells: ICell[], run: boolean) => Promise<void>;

/** The path (as the kernel will read it) of the file selected in the file browser, or null. */
export type FilePicker = () => string | null;

/** The panel's user settings (schema/plugin.json). */
export interface IPanelSettings {
  /** Seconds between job list refreshes while a job is under way (idle: IDLE_FACTOR times longer). */
  pollInterval: number;
  /** The base model the form starts with; empty for the schema's default. */
  defaultBaseModel: string;
}

export const DEFAULT_SETTINGS: IPanelSettings = { pollInterval: 2, defaultBaseModel: '' };
// The form shows the parameters of this group: TuningParams' main parameters (params.py).
const MAIN_GROUP = 'basic';
const IDLE_FACTOR = 5;
const MAX_BACKOFF_MS = 60_000;
const BASE_MODEL_CHOICE = '';

/** Create an element with a class and text; all user values go through textContent, never HTML. */
function el<K extends keyof HTMLElementTagNameMap>(tag: K, className = '', text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

function button(label: string, title: string, onClick: () => void, className = ''): HTMLButtonElement {
  const b = el('button', `jp-TuningPanel-button ${className}`.trim(), label);
  b.type = 'button';
  b.title = title;
  b.addEventListener('click', onClick);
  return b;
}

function shortState(state: string): string {
  return (state || 'unknown').replace(/^JOB_STATE_/, '').toLowerCase();
}

function formatTime(iso: string | null): string {
  if (!iso) {
    return '';
  }
  const d = new Date(iso);
  return isNaN(d.getTime())
    ? iso
    : d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** One form field: its schema entry, its input and the line that shows its problem. */
interface IField {
  param: IParameter;
  input: HTMLInputElement | HTMLSelectElement;
  error: HTMLDivElement;
  touched: boolean; // the user changed it: a settings default no longer replaces it
}

/**
 * The Tuning side panel: a form for the main parameters (built from GET schema), one button per
 * action (each inserts cells rendered by the server) and the live job list.
 */
export class TuningPanel extends Widget {
  constructor(
    private insertCells: CellInserter,
    private pickFile: FilePicker | null = null
  ) {
    super();
    this.addClass('jp-TuningPanel');
    const root = this.node;

    root.appendChild(el('h2', 'jp-TuningPanel-title', 'Tuning'));
    this.errorBox = el('div', 'jp-TuningPanel-error');
    this.errorBox.setAttribute('role', 'alert');
    this.errorBox.hidden = true;
    root.appendChild(this.errorBox);

    const formSection = el('details', 'jp-TuningPanel-section');
    formSection.open = true;
    formSection.appendChild(el('summary', 'jp-TuningPanel-heading', 'Parameters'));
    this.form = el('form', 'jp-TuningPanel-form');
    this.form.addEventListener('submit', e => e.preventDefault());
    formSection.appendChild(this.form);
    root.appendChild(formSection);

    this.actionBar = el('div', 'jp-TuningPanel-actions');
    root.appendChild(this.actionBar);

    const jobsHeader = el('div', 'jp-TuningPanel-jobsHeader');
    jobsHeader.appendChild(el('h3', 'jp-TuningPanel-heading', 'Jobs'));
    this.compareButton = button(
      'Compare',
      'Insert and run a cell that compares the checked jobs side by side',
      () => void this.compareSelected(),
      'jp-TuningPanel-compare'
    );
    jobsHeader.appendChild(this.compareButton);
    jobsHeader.appendChild(button('↻', 'Refresh the job list', () => void this.refreshJobs()));
    root.appendChild(jobsHeader);
    this.jobList = el('ul', 'jp-TuningPanel-jobs');
    root.appendChild(this.jobList);

    // The job list: polled only while the panel is visible, faster while a job is under way, backing
    // off after a failed request.
    this.poll = new Poll({
      auto: false,
      factory: () => this.fetchJobs(),
      frequency: this.pollFrequency(),
      name: 'jupyter-tune:jobs',
      standby: () => !this.isVisible || document.visibilityState === 'hidden'
    });
    void this.initialize();
  }

  dispose(): void {
    this.poll.dispose();
    super.dispose();
  }

  /** Apply the user's settings (again whenever they change). */
  configure(settings: IPanelSettings): void {
    this.settings = settings;
    this.poll.frequency = this.pollFrequency();
    const base = this.fields.get('base_model');
    if (base && !base.touched) {
      Private.setValue(base, settings.defaultBaseModel || base.param.default);
    }
  }

  /** Show an error in the panel (and the console); `null` hides the box. */
  showError(message: string | null): void {
    this.errorBox.replaceChildren();
    this.errorBox.hidden = message === null;
    if (message !== null) {
      console.error('jupyter-tune:', message);
      this.errorBox.appendChild(el('span', 'jp-TuningPanel-errorText', message));
      this.errorBox.appendChild(button('×', 'Dismiss', () => this.showError(null), 'jp-TuningPanel-dismiss'));
    }
  }

  /** Fetch the job list now and render it; the poll goes on from there. */
  async refreshJobs(): Promise<void> {
    await this.poll.refresh();
    await this.poll.tick;
  }

  protected onAfterShow(): void {
    void this.poll.refresh();
  }

  /** One poll tick: fetch and render the jobs. A rejection makes the poll back off. */
  private async fetchJobs(): Promise<void> {
    try {
      const reply = await requestAPI<{ jobs: IJobSummary[] }>('jobs');
      this.jobs = reply.jobs;
    } catch (error) {
      this.jobsError = true;
      this.showError(`Could not load the tuning jobs: ${errorText(error)}`);
      throw error;
    }
    this.renderJobs();
    this.renderModelChoices();
    if (this.jobsError) {
      this.jobsError = false;
      this.showError(null);
    }
    const frequency = this.pollFrequency();
    if (frequency.interval !== this.poll.frequency.interval) {
      this.poll.frequency = frequency;
    }
  }

  /** Fast while a job is under way, slower otherwise; errors back off up to a minute. */
  private pollFrequency(): { interval: number; backoff: boolean; max: number } {
    const active = this.jobs.some(j => this.states.active.includes(j.state));
    const interval = this.settings.pollInterval * 1000 * (active ? 1 : IDLE_FACTOR);
    return { interval, backoff: true, max: Math.max(MAX_BACKOFF_MS, interval) };
  }

  private async initialize(): Promise<void> {
    try {
      const [schema, templates] = await Promise.all([
        requestAPI<ISchema>('schema'),
        requestAPI<{ actions: IAction[] }>('templates')
      ]);
      this.actions = new Map(templates.actions.map(a => [a.id, a]));
      this.states = schema.states;
      this.renderForm(schema.parameters.filter(p => p.group === MAIN_GROUP));
      this.renderActions(templates.actions.filter(a => a.button));
      this.configure(this.settings);
    } catch (error) {
      this.showError(`The jupyter_tune server extension did not answer: ${errorText(error)}`);
    }
    await this.poll.start();
  }

  private renderForm(parameters: IParameter[]): void {
    for (const param of parameters) {
      this.form.appendChild(this.renderField(param));
    }

    // Which model Evaluate, Generate and Test use: the base model or a succeeded tuning job.
    const row = el('div', 'jp-TuningPanel-field');
    const labelNode = el('label', '', 'Tuned model');
    labelNode.htmlFor = 'jp-TuningPanel-job';
    labelNode.title = 'The model Evaluate, Generate and Test use';
    this.modelChoice = el('select');
    this.modelChoice.id = 'jp-TuningPanel-job';
    this.modelChoice.title = labelNode.title;
    row.append(labelNode, this.modelChoice);
    this.form.appendChild(row);
    this.renderModelChoices();
  }

  /** A label, an input (a select for choices), a 📂 button for datasets and the field's problem line. */
  private renderField(param: IParameter): HTMLDivElement {
    const id = `jp-TuningPanel-${param.name}`;
    const row = el('div', 'jp-TuningPanel-field');
    const labelNode = el('label', '', param.label);
    labelNode.htmlFor = id;
    labelNode.title = param.help;
    row.appendChild(labelNode);

    let input: HTMLInputElement | HTMLSelectElement;
    if (param.choices) {
      const select = el('select');
      for (const choice of param.choices) {
        const option = el('option', '', String(choice ?? 'none'));
        option.value = choice === null ? '' : String(choice);
        select.appendChild(option);
      }
      input = select;
    } else {
      const text = el('input');
      const numeric = param.type === 'int' || param.type === 'float';
      text.type = 'text'; // checked against the schema here: a number input hides what was typed
      if (numeric) {
        text.inputMode = param.type === 'int' ? 'numeric' : 'decimal';
      }
      text.placeholder = param.nullable ? (numeric ? 'auto' : 'optional') : '';
      if (param.kind === 'dataset') {
        text.placeholder = 'path to .jsonl, .csv, …';
      }
      input = text;
    }
    input.id = id;
    input.name = param.name;
    input.title = param.help;
    const field: IField = { param, input, error: el('div', 'jp-TuningPanel-fieldError'), touched: false };
    field.error.id = `${id}-error`;
    field.error.hidden = true;
    input.setAttribute('aria-describedby', field.error.id);
    Private.setValue(field, param.default);
    input.addEventListener('input', () => {
      field.touched = true;
      this.readField(field); // the problem shows (or goes) as the user types
    });
    input.addEventListener('change', () => (field.touched = true));

    const control = el('div', 'jp-TuningPanel-control');
    const inputRow = el('div', 'jp-TuningPanel-inputRow');
    inputRow.appendChild(input);
    if (param.kind === 'dataset' && this.pickFile) {
      const pick = button('📂', 'Use the file selected in the file browser', () => this.useSelectedFile(field));
      pick.classList.add('jp-TuningPanel-pick');
      pick.dataset.pickFor = param.name;
      inputRow.appendChild(pick);
    }
    control.append(inputRow, field.error);
    row.appendChild(control);
    this.fields.set(param.name, field);
    return row;
  }

  private renderModelChoices(): void {
    if (!this.modelChoice) {
      return;
    }
    const selected = this.modelChoice.value;
    const options = [el('option', '', 'none (the base model)')];
    options[0].value = BASE_MODEL_CHOICE;
    for (const job of this.jobs.filter(j => j.state === this.states.succeeded)) {
      const option = el('option', '', job.display_name || job.id);
      option.value = job.id;
      options.push(option);
    }
    this.modelChoice.replaceChildren(...options);
    this.modelChoice.value = options.some(o => o.value === selected) ? selected : BASE_MODEL_CHOICE;
  }

  private renderActions(actions: IAction[]): void {
    for (const action of actions) {
      const b = button(action.label, action.description, () => void this.runAction(action.id));
      b.dataset.action = action.id;
      if (action.id === 'tune') {
        b.classList.add('jp-mod-accept');
      }
      this.actionBar.appendChild(b);
    }
  }

  /** Put the file browser's selected file into a dataset field. */
  private useSelectedFile(field: IField): void {
    const path = this.pickFile?.() ?? null;
    if (!path) {
      this.showError('Select a data file in the file browser first, then click 📂 again.');
      return;
    }
    field.input.value = path;
    field.touched = true;
    this.readField(field);
    this.showError(null);
  }

  /** A field's value, typed and checked as the schema says; its problem shows at the field. */
  private readField(field: IField): Private.Parsed {
    const parsed = Private.parse(field);
    const problem = 'error' in parsed ? parsed.error : null;
    field.error.textContent = problem ?? '';
    field.error.hidden = problem === null;
    field.input.classList.toggle('jp-mod-invalid', problem !== null);
    field.input.setAttribute('aria-invalid', String(problem !== null));
    return parsed;
  }

  /** The form's values; throws naming the fields that have a problem (each shown at its field). */
  private formValues(): Record<string, unknown> {
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

  /**
   * Parameters for one action: the values it lists (its `params`, from GET templates), the job it
   * acts on and the jobs checked for Compare. Which model or data an action falls back to is the
   * server's rule (cells/render.py), not the panel's.
   */
  private paramsFor(actionId: string, jobId?: string): Record<string, unknown> {
    const action = this.actions.get(actionId);
    const values: Record<string, unknown> = {
      ...this.formValues(),
      job_id: jobId ?? (this.modelChoice?.value || null),
      job_ids: this.jobs.filter(j => this.selected.has(j.id)).map(j => j.id)
    };
    const params: Record<string, unknown> = {};
    for (const name of action?.params ?? []) {
      if (name in values) {
        params[name] = values[name];
      }
    }
    return params;
  }

  /** Render an action's cells on the server and insert them below the active cell. */
  private async runAction(actionId: string, jobId?: string, run = false): Promise<void> {
    try {
      const params = this.paramsFor(actionId, jobId);
      const reply = await requestAPI<{ cells: ICell[] }>('cells', {
        method: 'POST',
        body: JSON.stringify({ action: actionId, params })
      });
      await this.insertCells(reply.cells, run);
      this.showError(null);
    } catch (error) {
      this.showError(errorText(error));
    }
  }

  private async jobRequest(job: IJobSummary, method: 'POST' | 'DELETE', path: string): Promise<void> {
    try {
      await requestAPI<unknown>(path, { method });
    } catch (error) {
      this.showError(`${job.display_name || job.id}: ${errorText(error)}`);
    }
    await this.refreshJobs();
  }

  private async deleteJob(job: IJobSummary): Promise<void> {
    const answer = await showDialog({
      title: 'Delete tuning job',
      body: `Delete ${job.display_name || job.id} and its adapter, checkpoints and metrics?`,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
    });
    if (answer.button.accept) {
      await this.jobRequest(job, 'DELETE', `jobs/${encodeURIComponent(job.id)}`);
    }
  }

  /** Insert and run jt.compare_jobs([...]) for the checked jobs (in the list's order). */
  private async compareSelected(): Promise<void> {
    if (this.selected.size === 0) {
      this.showError('Check the jobs to compare first (the box beside each job).');
      return;
    }
    await this.runAction('compare', undefined, true);
  }

  private updateCompareButton(): void {
    this.compareButton.disabled = this.selected.size === 0;
    this.compareButton.textContent = this.selected.size > 1 ? `Compare (${this.selected.size})` : 'Compare';
  }

  private renderJobs(): void {
    const ids = new Set(this.jobs.map(j => j.id));
    for (const id of [...this.selected]) {
      if (!ids.has(id)) {
        this.selected.delete(id); // deleted jobs leave the selection
      }
    }
    this.updateCompareButton();
    if (this.jobs.length === 0) {
      this.jobList.replaceChildren(
        el('li', 'jp-TuningPanel-empty', 'No tuning jobs yet. Fill in the parameters and click Tune a model.')
      );
      return;
    }
    this.jobList.replaceChildren(...this.jobs.map(job => this.renderJob(job)));
  }

  private renderJob(job: IJobSummary): HTMLLIElement {
    const states = this.states;
    const state = shortState(job.state);
    const item = el('li', 'jp-TuningPanel-job');
    item.dataset.jobId = job.id;
    item.dataset.state = job.state;

    const top = el('div', 'jp-TuningPanel-jobTop');
    const check = el('input', 'jp-TuningPanel-jobSelect');
    check.type = 'checkbox';
    check.title = 'Select for Compare';
    check.checked = this.selected.has(job.id);
    check.addEventListener('change', () => {
      if (check.checked) {
        this.selected.add(job.id);
      } else {
        this.selected.delete(job.id);
      }
      this.updateCompareButton();
    });
    top.appendChild(check);
    const name = el('span', 'jp-TuningPanel-jobName', job.display_name || job.id);
    name.title = job.id;
    const queued = typeof job.queue_position === 'number'; // set only while the job waits for a slot
    const badge = el(
      'span',
      `jp-TuningPanel-badge jp-TuningPanel-state-${state}`,
      queued ? `${state} #${job.queue_position}` : state
    );
    badge.title = job.state;
    top.append(name, badge);
    item.appendChild(top);

    const details = [job.base_model ?? '', formatTime(job.start_time || job.create_time)].filter(Boolean);
    item.appendChild(el('div', 'jp-TuningPanel-jobMeta', details.join(' · ')));

    const { step, total_steps: total } = job.progress ?? {};
    if (typeof step === 'number' && total) {
      const progress = el('div', 'jp-TuningPanel-progress');
      const bar = el('progress');
      bar.max = total;
      bar.value = Math.min(step, total);
      progress.append(bar, el('span', 'jp-TuningPanel-steps', `${step}/${total}`));
      item.appendChild(progress);
    }

    if (job.error && states.final.includes(job.state) && job.state !== states.succeeded) {
      const message = typeof job.error === 'string' ? job.error : (job.error.message ?? '');
      const err = el('div', 'jp-TuningPanel-jobError', message.split('\n')[0]);
      err.title = message;
      item.appendChild(err);
    }

    const buttons = el('div', 'jp-TuningPanel-jobButtons');
    const id = encodeURIComponent(job.id);
    buttons.appendChild(
      button('View', 'Insert and run jt.get_job(...).view()', () => void this.runAction('view', job.id, true))
    );
    if (states.cancellable.includes(job.state)) {
      buttons.appendChild(
        button(
          'Cancel',
          'Stop the job; it keeps its last checkpoint',
          () => void this.jobRequest(job, 'POST', `jobs/${id}:cancel`)
        )
      );
    }
    if (job.state === states.succeeded) {
      buttons.appendChild(
        button('Test', 'Insert a cell that prompts the tuned model', () => void this.runAction('test', job.id))
      );
      buttons.appendChild(
        button(
          'Export',
          'Insert a cell that exports the tuned model and checks it',
          () => void this.runAction('export', job.id)
        )
      );
    }
    if (!states.active.includes(job.state)) {
      buttons.appendChild(button('Delete', 'Delete the job and its files', () => void this.deleteJob(job)));
    }
    item.appendChild(buttons);
    return item;
  }

  private actions = new Map<string, IAction>();
  private fields = new Map<string, IField>();
  private jobs: IJobSummary[] = [];
  private jobsError = false;
  private selected = new Set<string>(); // job ids checked for Compare
  private settings: IPanelSettings = DEFAULT_SETTINGS;
  // Until the schema arrives no state is known: no job offers Cancel.
  private states: IJobStates = { all: [], active: [], final: [], cancellable: [], succeeded: '' };
  private modelChoice: HTMLSelectElement | null = null;
  private readonly poll: Poll;
  private readonly compareButton: HTMLButtonElement;
  private readonly errorBox: HTMLDivElement;
  private readonly form: HTMLFormElement;
  private readonly actionBar: HTMLDivElement;
  private readonly jobList: HTMLUListElement;
}

namespace Private {
  export type Parsed = { value: unknown } | { error: string };

  const INTEGER = /^[+-]?\d+$/;

  /** Show a value in a field: empty for null, 1.0 (not 1) for a float. */
  export function setValue(field: IField, value: unknown): void {
    const { param, input } = field;
    if (value === null || value === undefined) {
      input.value = '';
    } else if (param.type === 'float' && typeof value === 'number' && Number.isInteger(value)) {
      input.value = value.toFixed(1);
    } else {
      input.value = String(value);
    }
  }

  /** A field's value, typed and checked against the schema (choices, type, minimum, maximum). */
  export function parse(field: IField): Parsed {
    const { param, input } = field;
    if (param.choices) {
      // the schema's own value (8, not "8"; null for "none")
      const choice = param.choices.find(c => (c === null ? '' : String(c)) === input.value);
      return choice !== undefined ? { value: choice } : { error: 'choose one of the listed values' };
    }
    const raw = input.value.trim();
    if (raw === '') {
      return param.nullable ? { value: null } : { value: param.default };
    }
    if (param.type !== 'int' && param.type !== 'float') {
      return { value: raw };
    }
    if (param.type === 'int' && !INTEGER.test(raw)) {
      return { error: `${raw} is not a whole number` };
    }
    const value = Number(raw);
    if (!Number.isFinite(value)) {
      return { error: `${raw} is not a number` };
    }
    if (param.minimum !== null && value < param.minimum) {
      return { error: `${value} is below the minimum ${param.minimum}` };
    }
    if (param.maximum !== null && value > param.maximum) {
      return { error: `${value} is above the maximum ${param.maximum}` };
    }
    return { value };
  }
}
