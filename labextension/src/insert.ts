/**
 * The panel's cells into a notebook (the current one, or a new one when none is open): after the notebook's
 * tuning section (section.ts), each marked with its action in the cell metadata, and run when asked.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';

import { panelCellMetadata, placement } from './section';
import { ICell } from './types';

/** The current notebook, or a new one when none is open. */
export async function targetNotebook(app: JupyterFrontEnd, tracker: INotebookTracker): Promise<NotebookPanel> {
  let panel = tracker.currentWidget;
  if (!panel) {
    await app.serviceManager.kernelspecs.ready; // else the default kernel is unknown: no kernel starts
    const kernelName = app.serviceManager.kernelspecs.specs?.default;
    panel = (await app.commands.execute('notebook:create-new', { kernelName })) as NotebookPanel;
  }
  await panel.context.ready;
  app.shell.activateById(panel.id);
  return panel;
}

/** Insert an action's cells after the notebook's tuning section (else at its end) and optionally run them. */
export async function insertCells(
  app: JupyterFrontEnd,
  tracker: INotebookTracker,
  cells: ICell[],
  run: boolean,
  action: string
): Promise<void> {
  const panel = await targetNotebook(app, tracker);
  const notebook = panel.content;
  const shared = notebook.model!.sharedModel;
  const { index, replaceEmpty } = placement(
    shared.cells.map(c => ({ source: c.getSource(), metadata: c.getMetadata() as Record<string, unknown> }))
  );
  shared.transact(() => {
    shared.insertCells(
      index,
      cells.map(c => ({ cell_type: c.cell_type, source: c.source, metadata: panelCellMetadata(action) }))
    );
    if (replaceEmpty) {
      shared.deleteCell(cells.length);
    }
  });
  notebook.activeCellIndex = index;
  notebook.deselectAll();
  if (run) {
    await panel.sessionContext.ready;
    for (let i = index; i < index + cells.length; i++) {
      notebook.activeCellIndex = i;
      await NotebookActions.run(notebook, panel.sessionContext);
    }
  }
  notebook.activeCellIndex = index + cells.length - 1;
  void notebook.scrollToItem(notebook.activeCellIndex);
}
