/**
 * The Tuning panel's state apart from its view: the schema and actions, the polled job list, the jobs
 * checked for Compare and the error shown. The view (panel.ts) renders from it on its signals and
 * calls its methods; every request goes through api.ts.
 */
import { IDisposable } from '@lumino/disposable';
import { IPoll, Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { ITuneAPI, tuneAPI } from './api';
import { checkValue } from './check';
import { IAction, ICell, IJobStates, IJobSummary, IParameter, ISchema } from './types';

/** The form shows the parameters of this group: TuningParams' main parameters (params.py). */
export const MAIN_GROUP = 'basic';
/** While no job is under way the list refreshes this many times less often. */
export const IDLE_FACTOR = 5;
/** Failed requests back off up to this long (or the idle interval, if longer). */
export const MAX_BACKOFF_MS = 60_000;
/** Until the schema arrives no state is known: no job offers Cancel. */
const NO_STATES: IJobStates = { all: [], active: [], final: [], cancellable: [], succeeded: '' };

export interface ITuningPanelModelOptions {
  /** The REST API (a fake in tests). */
  api?: ITuneAPI;
  /** Seconds between job list refreshes while a job is under way (settings' pollInterval). */
  pollInterval?: number;
  /** True while nobody sees the job list (the panel or the page hidden): the poll stands by. */
  standby?: () => boolean;
}

/** The panel's state; emits a signal for each part that changes. */
export class TuningPanelModel implements IDisposable {
  constructor(options: ITuningPanelModelOptions = {}) {
    this.api = options.api ?? tuneAPI;
    this._pollInterval = options.pollInterval ?? 2;
    const standby = options.standby ?? (() => false);
    // Polled only while visible, faster while a job is under way, backing off after a failed request.
    this.poll = new Poll<void, unknown, 'standby'>({
      auto: false,
      factory: () => this.fetchJobs(),
      frequency: this.frequency(),
      name: 'jupyter-tune:jobs',
      standby
    });
  }

  /** The schema and actions arrived (or failed to): the form and buttons can be drawn. */
  get stateChanged(): ISignal<this, void> {
    return this._stateChanged;
  }

  /** The job list changed (each successful poll). */
  get jobsChanged(): ISignal<this, readonly IJobSummary[]> {
    return this._jobsChanged;
  }

  /** The jobs checked for Compare changed. */
  get selectionChanged(): ISignal<this, ReadonlySet<string>> {
    return this._selectionChanged;
  }

  /** The panel's error message changed (null: none). */
  get errorChanged(): ISignal<this, string | null> {
    return this._errorChanged;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /** GET schema's reply; null until it arrives (or when it failed). */
  get schema(): ISchema | null {
    return this._schema;
  }

  /** The form's parameters (the schema's main group). */
  get mainParameters(): IParameter[] {
    return (this._schema?.parameters ?? []).filter(p => p.group === MAIN_GROUP);
  }

  /** The actions that are panel buttons, in the server's order. */
  get buttonActions(): IAction[] {
    return [...this.actions.values()].filter(a => a.button);
  }

  /** The server's action `id` (GET templates); undefined until they arrive or when it offers none. */
  action(id: string): IAction | undefined {
    return this.actions.get(id);
  }

  /** Whether the server's action reads parameter `name` (GET templates), e.g. tune's holdout. */
  actionTakes(actionId: string, name: string): boolean {
    return this.actions.get(actionId)?.params.includes(name) ?? false;
  }

  get states(): IJobStates {
    return this._schema?.states ?? NO_STATES;
  }

  get jobs(): readonly IJobSummary[] {
    return this._jobs;
  }

  /** Jobs whose tuned model Evaluate, Generate and Test may use. */
  get succeededJobs(): IJobSummary[] {
    return this._jobs.filter(j => j.state === this.states.succeeded);
  }

  /** Job ids checked for Compare. */
  get selected(): ReadonlySet<string> {
    return this._selected;
  }

  get error(): string | null {
    return this._error;
  }

  /** The poll's current frequency (ms). */
  get pollFrequency(): IPoll.Frequency {
    return this.poll.frequency;
  }

  /** The poll's last tick (its phase and the interval to the next one). */
  get pollState(): IPoll.State<void, unknown, 'standby'> {
    return this.poll.state;
  }

  /** Seconds between refreshes while a job is under way (IDLE_FACTOR times more while none is). */
  get pollInterval(): number {
    return this._pollInterval;
  }

  set pollInterval(seconds: number) {
    this._pollInterval = seconds;
    this.poll.frequency = this.frequency();
  }

  isActive(job: IJobSummary): boolean {
    return this.states.active.includes(job.state);
  }

  isCancellable(job: IJobSummary): boolean {
    return this.states.cancellable.includes(job.state);
  }

  isSucceeded(job: IJobSummary): boolean {
    return job.state === this.states.succeeded;
  }

  /** A job that ended without success (its error is worth showing). */
  isFailed(job: IJobSummary): boolean {
    return this.states.final.includes(job.state) && !this.isSucceeded(job);
  }

  /** Load the schema and actions, then start polling the job list. */
  async start(): Promise<void> {
    try {
      const [schema, actions] = await Promise.all([this.api.getSchema(), this.api.getTemplates()]);
      this._schema = schema;
      this.actions = new Map(actions.map(a => [a.id, a]));
    } catch (error) {
      this.setError(`The jupyter_tune server extension did not answer: ${errorText(error)}`);
    }
    this._stateChanged.emit();
    if (!this._isDisposed) {
      await this.poll.start();
    }
  }

  /** Fetch the job list now; the poll goes on from there. Resolves once the list is in. */
  async refresh(): Promise<void> {
    await this.poll.refresh();
    await this.poll.tick;
  }

  /** Someone looks again (the panel shown): refresh without waiting. */
  wake(): void {
    void this.poll.refresh();
  }

  /** Check or uncheck a job for Compare. */
  setSelected(jobId: string, selected: boolean): void {
    if (selected === this._selected.has(jobId)) {
      return;
    }
    if (selected) {
      this._selected.add(jobId);
    } else {
      this._selected.delete(jobId);
    }
    this._selectionChanged.emit(this._selected);
  }

  /** Show an error in the panel (and the console); null clears it. */
  setError(message: string | null): void {
    this.jobsError = false; // a newer message replaces the job list's
    if (message === this._error) {
      return;
    }
    if (message !== null) {
      console.error('jupyter-tune:', message);
    }
    this._error = message;
    this._errorChanged.emit(message);
  }

  /**
   * The parameters of one action: the form's values and the action's own (the job it acts on, the
   * jobs checked for Compare), kept to those the action lists (GET templates) and checked against
   * the schema's action parameters. Which model or data an action falls back to is the server's rule
   * (cells/render.py), not the panel's: an action whose `data` (GET templates) names the parameters its rows
   * come from needs one of them, as the server does. `extras` are values given beside the form (a command's
   * arguments: dataset, prompt, job_ids, ...), checked like job_id. Throws naming a value with a problem.
   */
  paramsFor(
    actionId: string,
    formValues: Record<string, unknown>,
    jobId: string | null,
    extras: Record<string, unknown> = {}
  ): Record<string, unknown> {
    const action = this.actions.get(actionId);
    if (!action) {
      throw new Error(`The server offers no "${actionId}" action: reload the page after updating jupyter_tune.`);
    }
    const values: Record<string, unknown> = {
      ...formValues,
      job_id: jobId,
      job_ids: this._jobs.filter(j => this._selected.has(j.id)).map(j => j.id),
      ...extras
    };
    const declared = new Map((this._schema?.action_parameters ?? []).map(p => [p.name, p]));
    const params: Record<string, unknown> = {};
    for (const name of action.params) {
      if (!(name in values)) {
        continue;
      }
      const param = declared.get(name);
      const problem = param && !(name in formValues) ? checkValue(param, values[name]) : null;
      if (problem !== null) {
        throw new Error(`${action.label}: ${param!.label} (${name}) ${problem}`);
      }
      params[name] = values[name];
    }
    const data = action.data ?? [];
    if (data.length > 0 && !data.some(name => given(params[name]))) {
      // The server refuses it too (never the training data); say which field to fill before any request.
      const fillable = data.filter(name => name in formValues);
      const labels = (fillable.length ? fillable : data).map(name => this.label(name)).join(' or ');
      throw new Error(
        `${action.label}: fill in ${labels}, the rows it runs on (the training data is never used for this).`
      );
    }
    return params;
  }

  /** A parameter's label in the schema (its name when the schema does not declare it). */
  private label(name: string): string {
    const all = [...(this._schema?.parameters ?? []), ...(this._schema?.action_parameters ?? [])];
    return all.find(p => p.name === name)?.label ?? name;
  }

  /** An action's notebook cells, rendered by the server. Throws with the server's message. */
  async cells(
    actionId: string,
    formValues: Record<string, unknown>,
    jobId: string | null,
    extras: Record<string, unknown> = {}
  ): Promise<ICell[]> {
    return this.api.makeCells(actionId, this.paramsFor(actionId, formValues, jobId, extras));
  }

  /** Cancel a job; a failure shows as the panel's error (and resolves null). The list refreshes either way. */
  async cancelJob(job: IJobSummary): Promise<IJobSummary | null> {
    return this.jobRequest(job, () => this.api.cancelJob(job.id));
  }

  /** Delete a job and its files; a failure shows as the panel's error. */
  async deleteJob(job: IJobSummary): Promise<void> {
    await this.jobRequest(job, () => this.api.deleteJob(job.id));
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this.poll.dispose();
    Signal.clearData(this);
  }

  private async jobRequest<T>(job: IJobSummary, request: () => Promise<T>): Promise<T | null> {
    let reply: T | null = null;
    try {
      reply = await request();
    } catch (error) {
      this.setError(`${job.display_name || job.id}: ${errorText(error)}`);
    }
    await this.refresh();
    return reply;
  }

  /** One poll tick. A rejection makes the poll back off; the next success clears its error. */
  private async fetchJobs(): Promise<void> {
    let jobs: IJobSummary[];
    try {
      jobs = await this.api.listJobs();
    } catch (error) {
      this.setError(`Could not load the tuning jobs: ${errorText(error)}`);
      this.jobsError = true;
      throw error;
    }
    this._jobs = jobs;
    const ids = new Set(jobs.map(j => j.id));
    const gone = [...this._selected].filter(id => !ids.has(id));
    gone.forEach(id => this._selected.delete(id)); // deleted jobs leave the selection
    if (this.jobsError) {
      this.setError(null);
    }
    this.poll.frequency = this.frequency();
    this._jobsChanged.emit(this._jobs);
    if (gone.length) {
      this._selectionChanged.emit(this._selected);
    }
  }

  /** Fast while a job is under way, IDLE_FACTOR times slower otherwise; errors back off up to a minute. */
  private frequency(): IPoll.Frequency {
    const active = this._jobs.some(j => this.isActive(j));
    const interval = this._pollInterval * 1000 * (active ? 1 : IDLE_FACTOR);
    return { interval, backoff: true, max: Math.max(MAX_BACKOFF_MS, interval) };
  }

  private readonly api: ITuneAPI;
  private readonly poll: Poll<void, unknown, 'standby'>;
  private actions = new Map<string, IAction>();
  private jobsError = false; // the error shown is the job list's: a successful poll clears it
  private _schema: ISchema | null = null;
  private _jobs: IJobSummary[] = [];
  private _selected = new Set<string>();
  private _error: string | null = null;
  private _pollInterval: number;
  private _isDisposed = false;
  private _stateChanged = new Signal<this, void>(this);
  private _jobsChanged = new Signal<this, readonly IJobSummary[]>(this);
  private _selectionChanged = new Signal<this, ReadonlySet<string>>(this);
  private _errorChanged = new Signal<this, string | null>(this);
}

/** A value the user gave: not null, undefined or empty text. */
function given(value: unknown): boolean {
  return value !== null && value !== undefined && !(typeof value === 'string' && value.trim() === '');
}

/** An error's message (the server's own for a REST error). */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
