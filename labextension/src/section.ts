/**
 * Where the panel's cells go in a notebook: right after its tuning section (the cells the panel inserted
 * before, marked in their metadata), or at the notebook's end when it has none; never wherever the cursor
 * happens to be. No JupyterLab import: jest tests it as it is (insert.ts applies it to a notebook).
 */

/** The cell metadata key that marks a cell the panel inserted: {"jupyter_tune": {"action": "tune"}}. */
export const CELL_METADATA_KEY = 'jupyter_tune';

/** What the placement reads of a cell. */
export interface ICellView {
  source: string;
  metadata: Readonly<Record<string, unknown>> | null | undefined;
}

/** Where to insert: `index`; `replaceEmpty`: the notebook is one empty cell, which the new cells replace. */
export interface IPlacement {
  index: number;
  replaceEmpty: boolean;
}

/** The metadata of a cell the panel inserts for `action`. */
export function panelCellMetadata(action: string): Record<string, { action: string }> {
  return { [CELL_METADATA_KEY]: { action } };
}

/** Whether a cell's metadata marks it as one the panel inserted. */
export function isPanelCell(metadata: ICellView['metadata']): boolean {
  const mark = metadata?.[CELL_METADATA_KEY];
  return typeof mark === 'object' && mark !== null;
}

/** Where new cells go: after the last panel cell, else at the end (a lone empty cell is replaced). */
export function placement(cells: readonly ICellView[]): IPlacement {
  for (let i = cells.length - 1; i >= 0; i--) {
    if (isPanelCell(cells[i].metadata)) {
      return { index: i + 1, replaceEmpty: false };
    }
  }
  if (cells.length === 1 && cells[0].source.trim() === '') {
    return { index: 0, replaceEmpty: true };
  }
  return { index: cells.length, replaceEmpty: false };
}
