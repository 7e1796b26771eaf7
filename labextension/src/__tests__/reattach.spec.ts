/** Job views marked disconnected when their kernel goes (reattach.ts): the DOM marking, the banner, the
 * session events that trigger it and the cells that re-attach in place. */
import { Signal } from '@lumino/signaling';

import {
  BANNER_CLASS,
  DISCONNECTED_CLASS,
  causeText,
  jobIdOf,
  jobViews,
  markDisconnected,
  showJobState,
  showNote,
  showsOnlyView,
  stateText,
  watchSession
} from '../reattach';

/** The DOM an ipywidgets JobView renders, reduced to its markers (widgets/view.py, header.py). */
function viewNode(jobId: string): HTMLElement {
  const view = document.createElement('div');
  view.className = `lm-Widget widget-vbox jt-job-view jt-job-id-${jobId}`;
  view.innerHTML =
    '<div class="widget-vbox"><div class="widget-hbox">' +
    '<div class="widget-html">step 17 / 100</div>' +
    '<button class="jupyter-button jt-cancel">Cancel</button></div></div>' +
    '<div class="widget-tab">Supervise</div>';
  return view;
}

function notebookWith(...views: HTMLElement[]): HTMLElement {
  const root = document.createElement('div');
  for (const view of views) {
    const output = document.createElement('div');
    output.className = 'jp-OutputArea-output';
    output.appendChild(view);
    root.appendChild(output);
  }
  document.body.replaceChildren(root);
  return root;
}

const banner = (view: HTMLElement) => view.querySelector<HTMLElement>(`:scope > .${BANNER_CLASS}`);

describe('job views in the DOM', () => {
  it('reads the job id from the view class', () => {
    expect(jobIdOf(viewNode('job-17'))).toBe('job-17');
    const odd = document.createElement('div');
    odd.className = 'jt-job-view jt-job-id-Not_An_Id';
    expect(jobIdOf(odd)).toBeNull();
  });

  it('finds the outermost views that carry a job id', () => {
    const outer = viewNode('a-1');
    outer.appendChild(viewNode('b-2')); // e.g. a view inside another widget's view
    const unmarked = document.createElement('div');
    unmarked.className = 'jt-job-view';
    const root = notebookWith(outer, viewNode('c-3'), unmarked);
    expect(jobViews(root).map(jobIdOf)).toEqual(['a-1', 'c-3']);
  });
});

describe('markDisconnected', () => {
  it('adds a banner naming the job with Re-attach and hides and disables Cancel', () => {
    const view = viewNode('job-17');
    const root = notebookWith(view);
    const reattached: string[] = [];
    const marked = markDisconnected(root, causeText('restarting'), id => reattached.push(id));

    expect(marked).toEqual([view]);
    expect(view.classList.contains(DISCONNECTED_CLASS)).toBe(true);
    const cancel = view.querySelector<HTMLButtonElement>('.jt-cancel')!;
    expect(cancel.disabled).toBe(true);
    expect(cancel.getAttribute('aria-hidden')).toBe('true');
    expect(view.firstElementChild).toBe(banner(view)); // first in the view, above the header
    expect(banner(view)!.textContent).toContain('The kernel restarted: this view stopped following job job-17.');
    expect(banner(view)!.getAttribute('role')).toBe('status');

    const button = banner(view)!.querySelector('button')!;
    expect(button.textContent).toBe('Re-attach');
    button.click();
    expect(reattached).toEqual(['job-17']);
  });

  it('marks every view of the notebook once, and a later cause replaces the message', () => {
    const a = viewNode('a-1');
    const b = viewNode('b-2');
    const root = notebookWith(a, b);
    expect(markDisconnected(root, causeText('restarting'), () => undefined)).toHaveLength(2);
    expect(markDisconnected(root, causeText('dead'), () => undefined)).toHaveLength(0);
    expect(root.querySelectorAll(`.${BANNER_CLASS}`)).toHaveLength(2);
    expect(banner(a)!.textContent).toContain('The kernel died: this view stopped following job a-1');
  });

  it('says whether the job still runs once its state is known', () => {
    const view = viewNode('job-17');
    markDisconnected(notebookWith(view), causeText('restarting'), () => undefined);
    showJobState(view, 'JOB_STATE_RUNNING');
    expect(banner(view)!.textContent).toContain('stopped following job job-17 (it still runs).');
    showJobState(view, 'JOB_STATE_SUCCEEDED');
    expect(banner(view)!.textContent).toContain('(it has ended: succeeded).');
    expect(stateText(null)).toBe('.');
    expect(stateText('JOB_STATE_QUEUED')).toBe(' (it still runs).');
  });

  it('keeps the job state when a second cause arrives', () => {
    const view = viewNode('job-17');
    const root = notebookWith(view);
    markDisconnected(root, causeText('restarting'), () => undefined);
    showJobState(view, 'JOB_STATE_RUNNING');
    markDisconnected(root, causeText('shutdown'), () => undefined);
    expect(banner(view)!.textContent).toContain(
      'The kernel shut down: this view stopped following job job-17 (it still runs).'
    );
  });

  it('shows a note under the message (where the live view went, or an error)', () => {
    const view = viewNode('job-17');
    markDisconnected(notebookWith(view), causeText('restarting'), () => undefined);
    showNote(view, 'Re-attach failed: no server', true);
    const note = banner(view)!.querySelector('.jt-reattach-note')!;
    expect(note.textContent).toBe('Re-attach failed: no server');
    expect(note.classList.contains('jt-mod-error')).toBe(true);
  });

  it('puts job text in as text, never HTML', () => {
    const view = viewNode('job-17');
    markDisconnected(notebookWith(view), '<img src=x onerror=alert(1)>', () => undefined);
    expect(view.querySelector('img')).toBeNull();
  });
});

describe('watchSession', () => {
  function fakeSession() {
    const owner = {};
    return {
      statusChanged: new Signal<unknown, string>(owner),
      kernelChanged: new Signal<unknown, { oldValue: unknown; newValue: unknown }>(owner),
      connectionStatusChanged: new Signal<unknown, string>(owner)
    };
  }

  it('reports a restart, a death, a shutdown, a change of kernel and a lost connection', () => {
    const session = fakeSession();
    const causes: string[] = [];
    const stop = watchSession(session, cause => causes.push(cause));
    for (const status of ['starting', 'idle', 'busy', 'restarting', 'autorestarting', 'dead']) {
      session.statusChanged.emit(status);
    }
    session.kernelChanged.emit({ oldValue: null, newValue: { id: 'k1' } }); // the first kernel: no disconnect
    session.kernelChanged.emit({ oldValue: { id: 'k1' }, newValue: { id: 'k2' } });
    session.kernelChanged.emit({ oldValue: { id: 'k2' }, newValue: null });
    session.connectionStatusChanged.emit('connecting'); // a reconnect attempt: the comms may live on
    session.connectionStatusChanged.emit('disconnected');
    expect(causes).toEqual(['restarting', 'autorestarting', 'dead', 'changed', 'shutdown', 'lost']);

    stop();
    session.statusChanged.emit('restarting');
    expect(causes).toHaveLength(6);
  });
});

describe('showsOnlyView', () => {
  it("re-runs in place only a cell that shows this job's view and nothing else", () => {
    const viewCell = "import jupyter_tune as jt\n\njt.get_job('job-17').view()\n";
    expect(showsOnlyView(viewCell, 'job-17')).toBe(true);
    expect(showsOnlyView('# follow it\njt.get_job("job-17").view()', 'job-17')).toBe(true);
    expect(showsOnlyView(viewCell, 'job-18')).toBe(false);
    // the tuning cell would start a second job; a variable is gone after a restart
    expect(showsOnlyView('job = jt.tune(base_model=m, train_dataset=d)\njob.view()', 'job-17')).toBe(false);
    expect(showsOnlyView('job.view()', 'job-17')).toBe(false);
    expect(showsOnlyView("jt.get_job('job-17').view()\njt.get_job('job-17').cancel()", 'job-17')).toBe(false);
  });
});
