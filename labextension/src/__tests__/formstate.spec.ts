/** formstate.ts: the form's values saved a moment after they change, and read back after a reload. */
import { FORM_STATE_KEY, FormMemory, FormTexts, IStateStore, restorableTexts } from '../formstate';

/** An in-memory IStateDB: what was saved under each key, and how many saves came. */
function fakeStore(
  initial: Record<string, unknown> = {}
): IStateStore & { data: Record<string, unknown>; saves: number } {
  const store = {
    data: { ...initial },
    saves: 0,
    fetch: async (id: string) => store.data[id],
    save: async (id: string, value: FormTexts) => {
      store.saves += 1;
      store.data[id] = value;
    }
  };
  return store;
}

describe('restorableTexts', () => {
  it("keeps the text of the form's own fields only", () => {
    const saved = { train_dataset: 'data/train.jsonl', epochs: '3', gone_field: 'x', adapter_size: 8 };
    expect(restorableTexts(saved, ['train_dataset', 'epochs', 'adapter_size'])).toEqual({
      train_dataset: 'data/train.jsonl',
      epochs: '3'
    });
  });

  it('reads nothing from a missing or damaged entry', () => {
    for (const saved of [undefined, null, 'text', ['a'], 3]) {
      expect(restorableTexts(saved, ['epochs'])).toEqual({});
    }
  });
});

describe('FormMemory', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('saves once per burst of typing, the last values, under the form key', async () => {
    const store = fakeStore();
    const memory = new FormMemory(store, { delayMs: 100 });
    memory.remember({ epochs: '1' });
    memory.remember({ epochs: '12' });
    jest.advanceTimersByTime(50);
    expect(store.saves).toBe(0);
    memory.remember({ epochs: '123' });
    jest.advanceTimersByTime(100);
    await Promise.resolve();
    expect(store.saves).toBe(1);
    expect(store.data[FORM_STATE_KEY]).toEqual({ epochs: '123' });
  });

  it('reads back what it saved (a reload: a new memory on the same store)', async () => {
    const store = fakeStore();
    const before = new FormMemory(store);
    before.remember({ train_dataset: 'data/train.jsonl', task: 'classification' });
    await before.flush();
    const after = new FormMemory(store);
    expect(await after.restore(['train_dataset', 'task', 'epochs'])).toEqual({
      train_dataset: 'data/train.jsonl',
      task: 'classification'
    });
  });

  it('reports a failing store instead of throwing, and restores nothing', async () => {
    const errors: unknown[] = [];
    const broken: IStateStore = {
      fetch: () => Promise.reject(new Error('no workspace')),
      save: () => Promise.reject(new Error('read-only'))
    };
    const memory = new FormMemory(broken, { onError: e => errors.push(e) });
    expect(await memory.restore(['epochs'])).toEqual({});
    memory.remember({ epochs: '2' });
    await memory.flush();
    expect(errors.map(e => (e as Error).message)).toEqual(['no workspace', 'read-only']);
  });

  it('saves nothing once disposed', async () => {
    const store = fakeStore();
    const memory = new FormMemory(store, { delayMs: 10 });
    memory.remember({ epochs: '2' });
    memory.dispose();
    jest.advanceTimersByTime(50);
    await memory.flush();
    expect(store.saves).toBe(0);
  });
});
