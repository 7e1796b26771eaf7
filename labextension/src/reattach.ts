/**
 * Job views that follow the job, not the kernel (issue 38.5). A tuning job runs in its own process and
 * outlives the kernel that showed its view (widgets/view.py). When that kernel restarts, dies, shuts down or
 * its connection is lost, the view's widgets freeze: their comms are gone, the step stops moving and its
 * Cancel button does nothing. This module watches each notebook's session and marks the job views in it
 * disconnected: a banner that names the job, with Re-attach, and the view's Cancel button hidden and disabled
 * (a view never offers a live Cancel for a job it no longer watches).
 *
 * Re-attach shows a live view again. A cell that only shows this job's view (what View and Re-attach insert)
 * is run again in place; any other cell (e.g. the one that called jt.tune, which must not start a second
 * job) keeps its output, and the View action's cell, `jt.get_job("<id>").view()`, is inserted below it and
 * run, through the same command as the panel's View button.
 *
 * The Python view marks its DOM: `jt-job-view` and `jt-job-id-<id>` on the view, `jt-cancel` on its Cancel
 * button. The DOM helpers below are pure (tested by jest); `activateReattach` wires them to the notebooks.
 */
import type { JupyterFrontEnd } from '@jupyterlab/application';
import type { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import type { ISignal } from '@lumino/signaling';

import { getJob } from './api';
import { CommandIDs } from './commands';

export const VIEW_CLASS = 'jt-job-view';
export const JOB_ID_CLASS_PREFIX = 'jt-job-id-';
export const CANCEL_CLASS = 'jt-cancel';
export const DISCONNECTED_CLASS = 'jt-mod-disconnected';
export const BANNER_CLASS = 'jt-reattach-banner';
export const REATTACH_BUTTON_CLASS = 'jt-reattach-button';

/** Job ids as the store allows them (jobs/store.py). */
const JOB_ID = /^[a-z0-9-]{1,64}$/;
const ACTIVE_STATES = ['JOB_STATE_QUEUED', 'JOB_STATE_PENDING', 'JOB_STATE_RUNNING', 'JOB_STATE_CANCELLING'];

/** What ended a view's link to its kernel. */
export type DisconnectCause = 'restarting' | 'autorestarting' | 'dead' | 'shutdown' | 'changed' | 'lost';

const CAUSES: Record<DisconnectCause, string> = {
  restarting: 'The kernel restarted',
  autorestarting: 'The kernel died and restarted',
  dead: 'The kernel died',
  shutdown: 'The kernel shut down',
  changed: 'The kernel changed',
  lost: 'The connection to the kernel was lost'
};

export function causeText(cause: DisconnectCause): string {
  return CAUSES[cause];
}

/** The job id a view carries in its `jt-job-id-<id>` class, or null. */
export function jobIdOf(view: Element): string | null {
  for (const name of Array.from(view.classList)) {
    if (name.startsWith(JOB_ID_CLASS_PREFIX)) {
      const id = name.slice(JOB_ID_CLASS_PREFIX.length);
      return JOB_ID.test(id) ? id : null;
    }
  }
  return null;
}

/** The job views under `root` that carry a job id (the outermost ones: a view inside another is its part). */
export function jobViews(root: ParentNode): HTMLElement[] {
  return Array.from(root.querySelectorAll<HTMLElement>(`.${VIEW_CLASS}`)).filter(
    view => jobIdOf(view) !== null && !view.parentElement?.closest(`.${VIEW_CLASS}`)
  );
}

/** The words after the cause, from the job's state once known: whether the job still runs. */
export function stateText(state: string | null | undefined): string {
  if (!state) {
    return '.';
  }
  if (ACTIVE_STATES.includes(state)) {
    return ' (it still runs).';
  }
  const label = state.replace(/^JOB_STATE_/, '').toLowerCase();
  return ` (it has ended: ${label}).`;
}

/** Set a banner's message: "<cause>: this view stopped following job <id> (it still runs)." */
function setMessage(banner: HTMLElement, cause: string, jobId: string, state: string | null): void {
  const message = banner.querySelector<HTMLElement>('.jt-reattach-message')!;
  const code = document.createElement('code');
  code.textContent = jobId;
  message.replaceChildren(`${cause}: this view stopped following job `, code, stateText(state));
  banner.dataset.cause = cause;
}

function makeBanner(jobId: string, cause: string, onReattach: () => void): HTMLElement {
  const banner = document.createElement('div');
  banner.className = BANNER_CLASS;
  banner.setAttribute('role', 'status');
  banner.dataset.jobId = jobId;
  const message = document.createElement('span');
  message.className = 'jt-reattach-message';
  const button = document.createElement('button');
  button.type = 'button';
  button.className = `${REATTACH_BUTTON_CLASS} jp-Button jp-mod-styled jp-mod-accept`;
  button.textContent = 'Re-attach';
  button.title = `Show a live view of job ${jobId} again (jt.get_job(${JSON.stringify(jobId)}).view())`;
  button.addEventListener('click', event => {
    event.stopPropagation(); // a click in an output must not also select or run the cell
    onReattach();
  });
  const note = document.createElement('span');
  note.className = 'jt-reattach-note';
  banner.append(message, button, note);
  setMessage(banner, cause, jobId, null);
  return banner;
}

/**
 * Mark every job view under `root` disconnected: the class that hides its Cancel button, the button
 * disabled, and a banner (first in the view) whose Re-attach calls `onReattach(jobId, view)`. A view
 * already marked gets the newer cause. Returns the views newly marked.
 */
export function markDisconnected(
  root: ParentNode,
  cause: string,
  onReattach: (jobId: string, view: HTMLElement) => void
): HTMLElement[] {
  const marked: HTMLElement[] = [];
  for (const view of jobViews(root)) {
    const jobId = jobIdOf(view)!;
    const existing = view.querySelector<HTMLElement>(`:scope > .${BANNER_CLASS}`);
    if (existing) {
      setMessage(existing, cause, jobId, existing.dataset.state ?? null);
      continue;
    }
    view.classList.add(DISCONNECTED_CLASS);
    for (const cancel of Array.from(view.querySelectorAll<HTMLButtonElement>(`.${CANCEL_CLASS}`))) {
      cancel.disabled = true;
      cancel.setAttribute('aria-hidden', 'true');
    }
    view.prepend(makeBanner(jobId, cause, () => onReattach(jobId, view)));
    marked.push(view);
  }
  return marked;
}

/** Put the job's state into a marked view's banner ("it still runs" / "it has ended: succeeded"). */
export function showJobState(view: HTMLElement, state: string): void {
  const banner = view.querySelector<HTMLElement>(`:scope > .${BANNER_CLASS}`);
  if (banner) {
    banner.dataset.state = state;
    setMessage(banner, banner.dataset.cause ?? CAUSES.restarting, banner.dataset.jobId!, state);
  }
}

/** A line under the banner's message: where the live view went, or why Re-attach failed. */
export function showNote(view: HTMLElement, text: string, error = false): void {
  const note = view.querySelector<HTMLElement>(`:scope > .${BANNER_CLASS} .jt-reattach-note`);
  if (note) {
    note.textContent = text;
    note.classList.toggle('jt-mod-error', error);
  }
}

/**
 * Whether a cell's code does nothing but show job `jobId`'s view, so running it again re-attaches in place:
 * `jt.get_job("<id>").view()` (the View action's cell), with its import, comments and blank lines.
 */
export function showsOnlyView(source: string, jobId: string): boolean {
  const lines = source
    .split('\n')
    .map(line => line.trim())
    .filter(line => line !== '' && !line.startsWith('#') && line !== 'import jupyter_tune as jt');
  const match = lines.length === 1 ? /^jt\.get_job\((['"])([a-z0-9-]+)\1\)\.view\(\)$/.exec(lines[0]) : null;
  return match !== null && match[2] === jobId;
}

/** The session signals a notebook's disconnect is read from (a SessionContext). */
export interface ISessionSignals {
  statusChanged: ISignal<unknown, string>;
  kernelChanged: ISignal<unknown, { oldValue: unknown; newValue: unknown }>;
  connectionStatusChanged: ISignal<unknown, string>;
}

/** Call `onDisconnect(cause)` whenever the session's kernel restarts, dies, shuts down, is replaced or its
 * connection is given up; returns a function that stops watching. */
export function watchSession(session: ISessionSignals, onDisconnect: (cause: DisconnectCause) => void): () => void {
  const onStatus = (_: unknown, status: string) => {
    if (status === 'restarting' || status === 'autorestarting' || status === 'dead') {
      onDisconnect(status);
    }
  };
  const onKernel = (_: unknown, change: { oldValue: unknown; newValue: unknown }) => {
    // The first kernel of a session (no old one) is no disconnect; a shutdown or a change of kernel is.
    if (change.oldValue && change.oldValue !== change.newValue) {
      onDisconnect(change.newValue ? 'changed' : 'shutdown');
    }
  };
  const onConnection = (_: unknown, status: string) => {
    // 'connecting' is a reconnect attempt (the comms live on if it succeeds); 'disconnected' is given up.
    if (status === 'disconnected') {
      onDisconnect('lost');
    }
  };
  session.statusChanged.connect(onStatus);
  session.kernelChanged.connect(onKernel);
  session.connectionStatusChanged.connect(onConnection);
  return () => {
    session.statusChanged.disconnect(onStatus);
    session.kernelChanged.disconnect(onKernel);
    session.connectionStatusChanged.disconnect(onConnection);
  };
}

/** What `activateReattach` needs besides the app and the notebooks (replaceable in tests). */
export interface IReattachOptions {
  /** The job's state from the server (GET /jupyter-tune/jobs/<id>). */
  jobState?: (jobId: string) => Promise<string>;
}

/** Re-attach the frozen `view` of `jobId` in `panel`: run its cell again when it only shows this view, else
 * insert and run the View action's cell below it. */
async function reattach(app: JupyterFrontEnd, panel: NotebookPanel, jobId: string, view: HTMLElement): Promise<void> {
  const notebook = panel.content;
  const index = notebook.widgets.findIndex(cell => cell.node.contains(view));
  app.shell.activateById(panel.id); // the commands below act on the current notebook
  if (index >= 0) {
    notebook.activeCellIndex = index;
    notebook.deselectAll();
  }
  const cell = index >= 0 ? notebook.widgets[index] : null;
  if (cell && cell.model.type === 'code' && showsOnlyView(cell.model.sharedModel.getSource(), jobId)) {
    await app.commands.execute('notebook:run-cell');
  } else {
    showNote(view, 'Re-attaching…');
    await app.commands.execute(CommandIDs.view, { job_id: jobId });
    showNote(view, 'The live view is in the cell below.');
  }
}

/** Watch every notebook (open now or later) and mark its job views disconnected when its kernel goes. */
export function activateReattach(
  app: JupyterFrontEnd,
  tracker: INotebookTracker,
  options: IReattachOptions = {}
): void {
  const jobState = options.jobState ?? (async (jobId: string) => (await getJob(jobId)).state);
  const watch = (panel: NotebookPanel) => {
    const stop = watchSession(panel.sessionContext, cause => {
      const views = markDisconnected(panel.content.node, causeText(cause), (jobId, view) => {
        reattach(app, panel, jobId, view).catch(error =>
          showNote(view, `Re-attach failed: ${error instanceof Error ? error.message : String(error)}`, true)
        );
      });
      for (const view of views) {
        jobState(jobIdOf(view)!)
          .then(state => showJobState(view, state))
          .catch(() => undefined); // the banner stays without the state (e.g. the job was deleted)
      }
    });
    panel.disposed.connect(stop);
  };
  tracker.forEach(watch);
  tracker.widgetAdded.connect((_, panel) => watch(panel));
}
