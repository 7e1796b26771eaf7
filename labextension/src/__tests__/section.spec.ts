/** section.ts: the panel's cells go after the notebook's tuning section, else at its end. */
import { CELL_METADATA_KEY, isPanelCell, panelCellMetadata, placement } from '../section';

const mine = (action: string) => ({ source: `# ${action}`, metadata: panelCellMetadata(action) });
const theirs = (source: string) => ({ source, metadata: {} });

describe('placement', () => {
  it('goes after the last cell the panel inserted, whatever comes after it', () => {
    const cells = [theirs('import pandas'), mine('tune'), mine('tune'), theirs('df.head()'), theirs('x = 1')];
    expect(placement(cells)).toEqual({ index: 3, replaceEmpty: false });
  });

  it('takes the last of several panel cells, even apart', () => {
    const cells = [mine('tune'), theirs('a'), mine('evaluate'), theirs('b')];
    expect(placement(cells)).toEqual({ index: 3, replaceEmpty: false });
  });

  it("goes at the notebook's end when it has no tuning section", () => {
    expect(placement([theirs('a'), theirs('b')])).toEqual({ index: 2, replaceEmpty: false });
    expect(placement([])).toEqual({ index: 0, replaceEmpty: false });
  });

  it("replaces a new notebook's one empty cell", () => {
    expect(placement([theirs('  \n')])).toEqual({ index: 0, replaceEmpty: true });
  });

  it('reads the mark, not the source, and no metadata at all is no mark', () => {
    expect(isPanelCell({ [CELL_METADATA_KEY]: { action: 'view' } })).toBe(true);
    expect(isPanelCell({ [CELL_METADATA_KEY]: 'tune' })).toBe(false);
    expect(isPanelCell(undefined)).toBe(false);
    expect(isPanelCell(null)).toBe(false);
    expect(placement([{ source: 'jt.tune(...)', metadata: undefined }])).toEqual({ index: 1, replaceEmpty: false });
  });
});

describe('panelCellMetadata', () => {
  it('marks a cell with its action', () => {
    expect(panelCellMetadata('tune')).toEqual({ jupyter_tune: { action: 'tune' } });
  });
});
