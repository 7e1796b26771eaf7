import { Dialog, showDialog } from '@jupyterlab/apputils';
import { refreshIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { checkDataset } from './api';
import { CommandIDs, commandForAction, serverPath } from './commands';
import { CheckFunction, DatasetChecker, IDatasetVerdict, NO_HEAD_METHODS } from './datasetcheck';
import { button, el } from './dom';
import { FilePicker, ParameterForm } from './form';
import { FormMemory, IStateStore } from './formstate';
import { EvaluationData, HoldoutChoice } from './holdout';
import { TuningPanelModel, errorText } from './model';
import { offersModel, outcomeLines } from './outcome';
import { IAction, ICell, IJobSummary, ISchema } from './types';

export type { FilePicker } from './form';

/** How the panel puts an action's cells into a notebook; `run` executes them once inserted. */
export type CellInserter = (cells: ICell[], run: boolean, action: string) => Promise<void>;

/** What the panel may be given besides its model: where the form's values survive a reload (IStateDB),
 * the folder the form's relative paths start from (the kernel's), and the dataset check (POST check-dataset). */
export interface IPanelServices {
  state?: IStateStore | null;
  formFolder?: () => string;
  checkDataset?: CheckFunction;
}

/** How long the panel waits for the saved form values before it is ready without them (ms). */
const RESTORE_TIMEOUT_MS = 3000;

/** How the panel's buttons run JupyterLab commands (app.commands.execute): each button is a command
 * (commands.ts), so the palette, shortcuts and the file browser take the buttons' path. */
export type CommandExecutor = (id: string, args?: Record<string, any>) => Promise<unknown>;

/** The panel's user settings (schema/plugin.json). */
export interface IPanelSettings {
  /** Seconds between job list refreshes while a job is under way (idle: IDLE_FACTOR times longer). */
  pollInterval: number;
  /** The base model the form starts with; empty for the schema's default. */
  defaultBaseModel: string;
}

export const DEFAULT_SETTINGS: IPanelSettings = { pollInterval: 2, defaultBaseModel: '' };
const BASE_MODEL_CHOICE = '';
/** The field whose data the task suggestion reads, and the field it fills. */
const TRAINING_FIELD = 'train_dataset';
const TASK_FIELD = 'task';

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

/**
 * The Tuning side panel, the view of a `TuningPanelModel`: a form for the main parameters (built
 * from GET schema), one button per action (each inserts cells rendered by the server) and the live
 * job list. It draws on the model's signals and calls its methods; it makes no request itself.
 * With an `execute`, its buttons run the JupyterLab commands of commands.ts, which call back
 * `runAction` and `cancelJob` here.
 */
export class TuningPanel extends Widget {
  constructor(
    private insertCells: CellInserter,
    private pickFile: FilePicker | null = null,
    model?: TuningPanelModel,
    private execute: CommandExecutor | null = null,
    private services: IPanelServices = {}
  ) {
    super();
    this.ready = new Promise(resolve => (this.resolveReady = resolve));
    this.model =
      model ??
      new TuningPanelModel({
        pollInterval: DEFAULT_SETTINGS.pollInterval,
        standby: () => !this.isVisible || document.visibilityState === 'hidden'
      });
    this.addClass('jp-TuningPanel');
    const root = this.node;

    root.appendChild(el('h2', 'jp-TuningPanel-title', 'Tuning'));
    this.errorBox = el('div', 'jp-TuningPanel-error');
    this.errorBox.setAttribute('role', 'alert');
    this.errorBox.hidden = true;
    root.appendChild(this.errorBox);

    this.formSection = el('details', 'jp-TuningPanel-section');
    this.formSection.open = true;
    this.formSection.appendChild(el('summary', 'jp-TuningPanel-heading', 'Parameters'));
    root.appendChild(this.formSection);

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
    this.compareButton.disabled = true;
    jobsHeader.appendChild(this.compareButton);
    const refresh = button('', 'Refresh the job list', () => void this.model.refresh(), 'jp-TuningPanel-refresh');
    refresh.setAttribute('aria-label', refresh.title);
    refreshIcon.element({ container: refresh, elementPosition: 'center', height: '16px', width: '16px' });
    jobsHeader.appendChild(refresh);
    root.appendChild(jobsHeader);
    this.jobList = el('ul', 'jp-TuningPanel-jobs');
    this.jobList.setAttribute('aria-busy', 'true'); // until the first list arrives
    root.appendChild(this.jobList);

    this.model.stateChanged.connect(this.renderSchema, this);
    this.model.jobsChanged.connect(this.renderJobs, this);
    this.model.selectionChanged.connect(this.updateCompareButton, this);
    this.model.errorChanged.connect(this.renderError, this);
    void this.model.start();
  }

  /** The panel's state (jobs, selection, polling, errors). */
  readonly model: TuningPanelModel;

  /** Resolves once the server's schema and actions are in (or failed to come) and the form is drawn. */
  readonly ready: Promise<void>;

  /** GET schema's reply (null until it arrives, or when the server did not answer). */
  get schema(): ISchema | null {
    return this.model.schema;
  }

  /** The server's action `id` (GET templates). */
  action(id: string): IAction | undefined {
    return this.model.action(id);
  }

  /** Show a message in the error box (null clears it). */
  setError(message: string | null): void {
    this.model.setError(message);
  }

  /** What form field `name` holds as typed ('' when empty or absent). */
  text(name: string): string {
    return this.form?.text(name) ?? '';
  }

  /** Put values in the form's fields as the user would type them (a command's arguments). */
  fill(values: Record<string, unknown>): void {
    if (!this.form) {
      throw new Error('The Tuning panel has no form: the jupyter_tune server extension did not answer.');
    }
    for (const [name, value] of Object.entries(values)) {
      this.form.setValue(name, value);
    }
  }

  /**
   * Render an action's cells on the server and insert them below the active cell (and run them): what an
   * action's button does. `args` that are form fields fill the form first; the others (job_id, job_ids,
   * dataset, prompt, holdout, ...) go with the form's values. Without a job_id the action takes the
   * "Tuned model" choice (View and Export: else the newest job). A problem shows in the error box and
   * rejects.
   */
  async runAction(actionId: string, args: Record<string, unknown> = {}, run = false): Promise<ICell[]> {
    try {
      await this.ready;
      if (!this.form) {
        throw new Error('The Tuning panel has no form: the jupyter_tune server extension did not answer.');
      }
      const fields = new Set(this.model.mainParameters.map(p => p.name));
      const extras: Record<string, unknown> = {};
      const formArgs: Record<string, unknown> = {};
      for (const [name, value] of Object.entries(args)) {
        (fields.has(name) ? formArgs : extras)[name] = value;
      }
      this.fill(formArgs);
      const values: Record<string, unknown> = { ...this.form.values() };
      if (this.holdout && !('holdout' in extras)) {
        values.holdout = this.holdout.value();
      }
      if (this.holdout && values.holdout !== null && !('holdout_conflicts' in extras)) {
        values.holdout_conflicts = this.holdout.conflictsValue();
      }
      const evaluation = this.evaluation?.value() ?? '';
      if (evaluation) {
        // the rows kept out of tuning: Evaluate/Generate's rows, Tune's test rows (each action takes its own)
        values.dataset ??= evaluation;
        values.test_dataset ??= evaluation;
      }
      const jobId = 'job_id' in extras ? (extras.job_id as string | null) : this.defaultJob(actionId);
      delete extras.job_id;
      if (actionId === 'compare' && !('job_ids' in extras) && this.model.selected.size === 0) {
        throw new Error('Check the jobs to compare first (the box beside each job).');
      }
      const cells = await this.model.cells(actionId, values, jobId, extras);
      this.model.setError(null); // the values passed: an earlier problem is gone while the cells go in (and run)
      await this.insertCells(cells, run, actionId);
      return cells;
    } catch (error) {
      this.model.setError(errorText(error));
      throw error;
    }
  }

  /** Cancel job `jobId` (null: the newest queued or running job); a problem shows and rejects. */
  async cancelJob(jobId: string | null = null): Promise<IJobSummary> {
    await this.ready;
    const find = () =>
      this.model.jobs.find(j => (jobId === null ? this.model.isCancellable(j) : j.id === jobId)) ?? null;
    let job = find();
    if (job === null) {
      await this.model.refresh();
      job = find();
    }
    if (job === null && jobId === null) {
      const message = 'Cancel a job: no job is queued or running.';
      this.model.setError(message);
      throw new Error(message);
    }
    const target = job ?? ({ id: jobId, display_name: null } as IJobSummary);
    const summary = await this.model.cancelJob(target);
    if (summary === null) {
      throw new Error(this.model.error ?? `Could not cancel ${jobId}`);
    }
    return summary;
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.checker?.dispose();
    void this.memory?.flush();
    this.model.dispose();
    super.dispose();
  }

  /** Apply the user's settings (again whenever they change). */
  configure(settings: IPanelSettings): void {
    this.settings = settings;
    this.model.pollInterval = settings.pollInterval;
    this.form?.setDefault('base_model', settings.defaultBaseModel || undefined);
  }

  protected onAfterShow(): void {
    this.model.wake();
  }

  /** The schema and actions are in: draw the form and the action buttons. */
  private renderSchema(): void {
    if (this.model.schema === null) {
      this.resolveReady();
      return; // the server did not answer: the error says so
    }
    const form = new ParameterForm(this.model.mainParameters, {
      pickFile: this.pickFile,
      reportError: message => this.model.setError(message),
      onSubmit: () => void this.command('tune')
    });
    this.form = form;
    form.node.appendChild(this.renderModelChoice());
    this.holdout = this.model.actionTakes('tune', 'holdout') ? new HoldoutChoice(form) : null;
    this.evaluation = this.model.actionTakes('evaluate', 'dataset') ? new EvaluationData(form) : null;
    this.formSection.appendChild(form.node);
    this.renderActions(this.model.buttonActions);
    this.configure(this.settings);
    this.checker = new DatasetChecker(this.services.checkDataset ?? checkDataset, (name, path, verdict) =>
      this.showVerdict(name, path, verdict)
    );
    const state = this.services.state;
    this.memory = state ? new FormMemory(state, { onError: e => console.warn('jupyter-tune: form state', e) }) : null;
    for (const type of ['input', 'change']) {
      form.node.addEventListener(type, event => this.formChanged(event));
    }
    void this.restoreForm().then(() => this.resolveReady());
  }

  /** The values the form had before the page was reloaded (the fields the user changed), then their checks. */
  private async restoreForm(): Promise<void> {
    const form = this.form;
    if (!form || !this.memory) {
      return;
    }
    const timeout = new Promise<Record<string, string>>(resolve => setTimeout(() => resolve({}), RESTORE_TIMEOUT_MS));
    const texts = await Promise.race([this.memory.restore(form.names), timeout]);
    const restored = form.restore(texts);
    this.holdout?.update();
    for (const name of restored) {
      this.checkField(name);
    }
  }

  /** A field changed: remember the form's values, and check a dataset path as it is typed. */
  private formChanged(event: Event): void {
    const name = (event.target as HTMLInputElement | null)?.name;
    if (!this.form || !name || !this.form.names.includes(name)) {
      return;
    }
    this.memory?.remember(this.form.touchedTexts());
    this.checkField(name);
  }

  /** Check field `name`'s path on the server (after a pause in typing) when it is a dataset field. */
  private checkField(name: string): void {
    const param = this.model.mainParameters.find(p => p.name === name);
    if (!this.form || !this.checker || param?.kind !== 'dataset') {
      return;
    }
    const text = this.form.text(name).trim();
    const path = text ? serverPath(text, this.services.formFolder?.() ?? '') : '';
    this.checker.schedule(name, path, name === TRAINING_FIELD);
  }

  /** A dataset check's answer: the field's problem, and for training data the suggested task. */
  private showVerdict(name: string, _path: string, verdict: IDatasetVerdict): void {
    const form = this.form;
    if (!form) {
      return;
    }
    form.setCheckProblem(name, verdict.problem);
    if (name !== TRAINING_FIELD) {
      return;
    }
    const suggestion = NO_HEAD_METHODS.includes(form.text('method')) ? null : verdict.suggestion;
    if (suggestion) {
      form.suggest(TASK_FIELD, suggestion.task, suggestion.reason);
    } else if (form.note(TASK_FIELD)) {
      form.suggest(TASK_FIELD, null, null); // the earlier suggestion's reason is gone with its data
    }
  }

  private renderError(_: unknown, message: string | null): void {
    this.errorBox.replaceChildren();
    this.errorBox.hidden = message === null;
    if (message !== null) {
      this.errorBox.appendChild(el('span', 'jp-TuningPanel-errorText', message));
      this.errorBox.appendChild(button('×', 'Dismiss', () => this.model.setError(null), 'jp-TuningPanel-dismiss'));
    }
  }

  /** Which model Evaluate, Generate and Test use: the base model or a succeeded tuning job. */
  private renderModelChoice(): HTMLDivElement {
    const row = el('div', 'jp-TuningPanel-field');
    const labelNode = el('label', '', 'Tuned model');
    labelNode.htmlFor = 'jp-TuningPanel-job';
    labelNode.title = 'The model Evaluate, Generate and Test use';
    this.modelChoice = el('select');
    this.modelChoice.id = 'jp-TuningPanel-job';
    this.modelChoice.title = labelNode.title;
    row.append(labelNode, this.modelChoice);
    this.renderModelChoices();
    return row;
  }

  private renderModelChoices(): void {
    if (!this.modelChoice) {
      return;
    }
    const selected = this.modelChoice.value;
    const options = [el('option', '', 'none (the base model)')];
    options[0].value = BASE_MODEL_CHOICE;
    for (const job of this.model.succeededJobs) {
      const option = el('option', '', job.display_name || job.id);
      option.value = job.id;
      options.push(option);
    }
    this.modelChoice.replaceChildren(...options);
    this.modelChoice.value = options.some(o => o.value === selected) ? selected : BASE_MODEL_CHOICE;
  }

  private renderActions(actions: IAction[]): void {
    this.actionBar.replaceChildren();
    for (const action of actions) {
      const b = button(action.label, action.description, () => void this.command(action.id));
      b.dataset.action = action.id;
      if (action.id === 'tune') {
        b.classList.add('jp-mod-accept');
      }
      this.actionBar.appendChild(b);
    }
  }

  /**
   * A button's click: the action's JupyterLab command (with `args`), else the action itself. A problem
   * already shows in the error box.
   */
  private async command(actionId: string, args: Record<string, unknown> = {}): Promise<void> {
    const id = actionId === 'cancel' ? CommandIDs.cancel : commandForAction(actionId);
    try {
      if (this.execute && id) {
        await this.execute(id, args);
      } else if (actionId === 'cancel') {
        await this.cancelJob((args.job_id as string) ?? null);
      } else {
        await this.runAction(actionId, args, actionId === 'view' || actionId === 'compare');
      }
    } catch {
      // shown in the panel
    }
  }

  /** The job an action takes when none is given: the "Tuned model" choice; View and Export (which need
   * one) else take the newest job (Export: the newest succeeded one). */
  private defaultJob(actionId: string): string | null {
    const chosen = this.modelChoice?.value || null;
    if (chosen !== null || this.model.action(actionId)?.job !== 'required') {
      return chosen;
    }
    const jobs = actionId === 'export' ? this.model.succeededJobs : this.model.jobs;
    return jobs[0]?.id ?? null;
  }

  /** Cancel asks first, as Delete does: a cancelled job stops for good (jt.resume continues it). */
  private async confirmCancel(job: IJobSummary): Promise<void> {
    const answer = await showDialog({
      title: 'Cancel tuning job',
      body:
        `Stop ${job.display_name || job.id}? It keeps its last checkpoint, which Test and Export can use; ` +
        `jt.resume("${job.id}") continues it.`,
      buttons: [Dialog.cancelButton({ label: 'Keep running' }), Dialog.warnButton({ label: 'Cancel job' })]
    });
    if (answer.button.accept) {
      await this.command('cancel', { job_id: job.id });
    }
  }

  private async deleteJob(job: IJobSummary): Promise<void> {
    const answer = await showDialog({
      title: 'Delete tuning job',
      body: `Delete ${job.display_name || job.id} and its adapter, checkpoints and metrics?`,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
    });
    if (answer.button.accept) {
      await this.model.deleteJob(job);
    }
  }

  /** Insert and run jt.compare_jobs([...]) for the checked jobs (in the list's order). */
  private async compareSelected(): Promise<void> {
    await this.command('compare');
  }

  private updateCompareButton(): void {
    const count = this.model.selected.size;
    this.compareButton.disabled = count === 0;
    this.compareButton.textContent = count > 1 ? `Compare (${count})` : 'Compare';
  }

  private renderJobs(): void {
    const jobs = this.model.jobs;
    this.jobList.removeAttribute('aria-busy');
    this.renderModelChoices();
    this.updateCompareButton();
    if (jobs.length === 0) {
      this.jobList.replaceChildren(
        el('li', 'jp-TuningPanel-empty', 'No tuning jobs yet. Fill in the parameters and click Tune a model.')
      );
      return;
    }
    this.jobList.replaceChildren(...jobs.map(job => this.renderJob(job)));
  }

  private renderJob(job: IJobSummary): HTMLLIElement {
    const model = this.model;
    const state = shortState(job.state);
    const item = el('li', 'jp-TuningPanel-job');
    item.dataset.jobId = job.id;
    item.dataset.state = job.state;

    const top = el('div', 'jp-TuningPanel-jobTop');
    const check = el('input', 'jp-TuningPanel-jobSelect');
    check.type = 'checkbox';
    check.title = 'Select for Compare';
    check.checked = model.selected.has(job.id);
    check.addEventListener('change', () => model.setSelected(job.id, check.checked));
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
    item.append(top, ...outcomeLines(job));

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

    if (job.error && model.isFailed(job)) {
      const message = typeof job.error === 'string' ? job.error : (job.error.message ?? '');
      const err = el('div', 'jp-TuningPanel-jobError', message.split('\n')[0]);
      err.title = message;
      item.appendChild(err);
    }

    const buttons = el('div', 'jp-TuningPanel-jobButtons');
    buttons.appendChild(
      button('View', 'Insert and run jt.get_job(...).view()', () => void this.command('view', { job_id: job.id }))
    );
    if (model.isCancellable(job)) {
      buttons.appendChild(
        button('Cancel', 'Stop the job; it keeps its last checkpoint', () => void this.confirmCancel(job))
      );
    }
    if (offersModel(job, model.states)) {
      buttons.appendChild(
        button(
          'Test',
          'Insert a cell that prompts the tuned model',
          () => void this.command('test', { job_id: job.id })
        )
      );
      buttons.appendChild(
        button(
          'Export',
          'Insert a cell that exports the tuned model and checks it',
          () => void this.command('export', { job_id: job.id })
        )
      );
    }
    if (!model.isActive(job)) {
      buttons.appendChild(button('Delete', 'Delete the job and its files', () => void this.deleteJob(job)));
    }
    item.appendChild(buttons);
    return item;
  }

  private resolveReady!: () => void;
  private form: ParameterForm | null = null;
  private checker: DatasetChecker | null = null;
  private memory: FormMemory | null = null;
  private holdout: HoldoutChoice | null = null;
  private evaluation: EvaluationData | null = null;
  private settings: IPanelSettings = DEFAULT_SETTINGS;
  private modelChoice: HTMLSelectElement | null = null;
  private readonly compareButton: HTMLButtonElement;
  private readonly errorBox: HTMLDivElement;
  private readonly formSection: HTMLDetailsElement;
  private readonly actionBar: HTMLDivElement;
  private readonly jobList: HTMLUListElement;
}
