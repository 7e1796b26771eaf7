import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { requestAPI } from './request';
import { ACTIVE_STATES, IAction, ICell, IJobSummary, IParameter, ISchema, SUCCEEDED } from './types';

/** How the panel puts cells into a notebook; `run` executes them once inserted. */
export type CellInserter = (cells: ICell[], run: boolean) => Promise<void>;

// The compact form: the main tuning parameters, with short labels.
const FORM_FIELDS: [name: string, label: string][] = [
  ['base_model', 'Base model'],
  ['method', 'Method'],
  ['train_dataset', 'Training data'],
  ['validation_dataset', 'Validation data'],
  ['tuned_model_display_name', 'Display name'],
  ['epochs', 'Epochs'],
  ['adapter_size', 'Adapter size'],
  ['learning_rate_multiplier', 'LR multiplier']
];
const POLL_ACTIVE_MS = 2000;
const POLL_IDLE_MS = 10000;
const BASE_MODEL_CHOICE = '';

/** Create an element with a class and text; all user values go through textContent, never HTML. */
function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className = '',
  text?: string
): HTMLElementTagNameMap[K] {
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

/**
 * The Tuning side panel: a form for the main parameters, one button per action (each inserts
 * cells rendered by the server) and the live job list.
 */
export class TuningPanel extends Widget {
  constructor(private insertCells: CellInserter) {
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

    void this.initialize();
  }

  dispose(): void {
    window.clearTimeout(this.pollTimer);
    super.dispose();
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

  /** Fetch the job list now and render it; schedules the next poll. */
  async refreshJobs(): Promise<void> {
    window.clearTimeout(this.pollTimer);
    try {
      const reply = await requestAPI<{ jobs: IJobSummary[] }>('jobs');
      this.jobs = reply.jobs;
      this.renderJobs();
      this.renderModelChoices();
      if (this.jobsError) {
        this.jobsError = false;
        this.showError(null);
      }
    } catch (error) {
      this.jobsError = true;
      this.showError(`Could not load the tuning jobs: ${errorText(error)}`);
    }
    if (!this.isDisposed) {
      const active = this.jobs.some(j => ACTIVE_STATES.has(j.state));
      this.pollTimer = window.setTimeout(
        () => void this.refreshJobs(),
        active && this.isVisible ? POLL_ACTIVE_MS : POLL_IDLE_MS
      );
    }
  }

  protected onAfterShow(): void {
    void this.refreshJobs();
  }

  private async initialize(): Promise<void> {
    try {
      const [schema, templates] = await Promise.all([
        requestAPI<ISchema>('schema'),
        requestAPI<{ actions: IAction[] }>('templates')
      ]);
      this.actions = new Map(templates.actions.map(a => [a.id, a]));
      this.renderForm(schema.parameters);
      this.renderActions(templates.actions.filter(a => a.button));
    } catch (error) {
      this.showError(`The jupyter_tune server extension did not answer: ${errorText(error)}`);
    }
    await this.refreshJobs();
  }

  private renderForm(parameters: IParameter[]): void {
    const byName = new Map(parameters.map(p => [p.name, p]));
    for (const [name, label] of FORM_FIELDS) {
      const param = byName.get(name);
      if (!param) {
        continue;
      }
      const id = `jp-TuningPanel-${name}`;
      const row = el('div', 'jp-TuningPanel-field');
      const labelNode = el('label', '', label);
      labelNode.htmlFor = id;
      labelNode.title = param.help;
      row.appendChild(labelNode);

      let input: HTMLInputElement | HTMLSelectElement;
      if (param.choices) {
        input = el('select');
        for (const choice of param.choices) {
          const option = el('option', '', String(choice ?? 'none'));
          option.value = choice === null ? '' : String(choice);
          input.appendChild(option);
        }
      } else {
        input = el('input');
        const numeric = param.type === 'int' || param.type === 'float';
        input.type = numeric ? 'number' : 'text';
        if (numeric) {
          input.step = param.type === 'int' ? '1' : 'any';
          if (param.minimum !== null) {
            input.min = String(param.minimum);
          }
          if (param.maximum !== null) {
            input.max = String(param.maximum);
          }
        }
        input.placeholder = param.nullable ? (numeric ? 'auto' : 'optional') : '';
        if (param.kind === 'dataset') {
          input.placeholder = 'path to .jsonl, .csv, …';
        }
      }
      input.id = id;
      input.name = name;
      input.title = param.help;
      input.value = Private.formatDefault(param);
      row.appendChild(input);
      this.form.appendChild(row);
      this.fields.set(name, { param, input });
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

  private renderModelChoices(): void {
    if (!this.modelChoice) {
      return;
    }
    const selected = this.modelChoice.value;
    const options = [el('option', '', 'none (the base model)')];
    options[0].value = BASE_MODEL_CHOICE;
    for (const job of this.jobs.filter(j => j.state === SUCCEEDED)) {
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

  /** The form's values, typed as the schema says; an empty optional field is null. */
  private formValues(): Record<string, unknown> {
    const values: Record<string, unknown> = {};
    for (const [name, { param, input }] of this.fields) {
      const raw = input.value.trim();
      if (raw === '') {
        values[name] = param.nullable ? null : param.default;
      } else if (param.type === 'int') {
        values[name] = Number.parseInt(raw, 10);
      } else if (param.type === 'float') {
        values[name] = Number.parseFloat(raw);
      } else {
        values[name] = raw;
      }
    }
    return values;
  }

  /** Parameters for one action: the form values it uses, plus the model and data it acts on. */
  private paramsFor(actionId: string, jobId?: string): Record<string, unknown> {
    const action = this.actions.get(actionId);
    const values = this.formValues();
    const params: Record<string, unknown> = {};
    for (const name of action?.params ?? []) {
      if (name in values) {
        params[name] = values[name];
      }
    }
    if (actionId === 'tune') {
      return params;
    }
    if (actionId === 'compare') {
      return { job_ids: this.jobs.filter(j => this.selected.has(j.id)).map(j => j.id) };
    }
    const chosen = jobId ?? (this.modelChoice?.value || undefined);
    if (chosen) {
      params.job_id = chosen;
    } else if (actionId === 'test') {
      const latest = this.jobs.find(j => j.state === SUCCEEDED);
      if (!latest) {
        throw new Error('No tuned model yet: tune a model first, then test it once the job has succeeded.');
      }
      params.job_id = latest.id;
    }
    if (actionId === 'evaluate' || actionId === 'generate') {
      params.dataset = values.validation_dataset ?? values.train_dataset ?? null;
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
    const queued = job.state === 'JOB_STATE_QUEUED' && typeof job.queue_position === 'number';
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

    if (job.state === 'JOB_STATE_FAILED' && job.error) {
      const message = typeof job.error === 'string' ? job.error : job.error.message ?? '';
      const err = el('div', 'jp-TuningPanel-jobError', message.split('\n')[0]);
      err.title = message;
      item.appendChild(err);
    }

    const buttons = el('div', 'jp-TuningPanel-jobButtons');
    const id = encodeURIComponent(job.id);
    buttons.appendChild(
      button('View', 'Insert and run jt.get_job(...).view()', () => void this.runAction('view', job.id, true))
    );
    if (ACTIVE_STATES.has(job.state) && job.state !== 'JOB_STATE_CANCELLING') {
      buttons.appendChild(
        button('Cancel', 'Stop the job; it keeps its last checkpoint', () => void this.jobRequest(job, 'POST', `jobs/${id}:cancel`))
      );
    }
    if (job.state === SUCCEEDED) {
      buttons.appendChild(
        button('Test', 'Insert a cell that prompts the tuned model', () => void this.runAction('test', job.id))
      );
      buttons.appendChild(
        button('Export', 'Insert a cell that exports the tuned model and checks it', () => void this.runAction('export', job.id))
      );
    }
    if (!ACTIVE_STATES.has(job.state)) {
      buttons.appendChild(button('Delete', 'Delete the job and its files', () => void this.deleteJob(job)));
    }
    item.appendChild(buttons);
    return item;
  }

  private actions = new Map<string, IAction>();
  private fields = new Map<string, { param: IParameter; input: HTMLInputElement | HTMLSelectElement }>();
  private jobs: IJobSummary[] = [];
  private jobsError = false;
  private selected = new Set<string>(); // job ids checked for Compare
  private readonly compareButton: HTMLButtonElement;
  private pollTimer = 0;
  private modelChoice: HTMLSelectElement | null = null;
  private readonly errorBox: HTMLDivElement;
  private readonly form: HTMLFormElement;
  private readonly actionBar: HTMLDivElement;
  private readonly jobList: HTMLUListElement;
}

namespace Private {
  /** A default as the form shows it: empty for null, 1.0 (not 1) for a float. */
  export function formatDefault(param: IParameter): string {
    const value = param.default;
    if (value === null || value === undefined) {
      return '';
    }
    if (param.type === 'float' && typeof value === 'number' && Number.isInteger(value)) {
      return value.toFixed(1);
    }
    return String(value);
  }
}
