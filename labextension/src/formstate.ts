/**
 * The form's values across page reloads: the fields the user filled in, as typed, saved in JupyterLab's
 * state database (IStateDB, kept with the workspace) under FORM_STATE_KEY a moment after they change, and
 * put back when the panel starts. No JupyterLab import: the store is anything with IStateDB's fetch/save.
 */

/** The state database key of the form's values. */
export const FORM_STATE_KEY = 'jupyter-tune:form';

/** How long after the last change the values are saved (ms): one save per burst of typing. */
export const SAVE_DELAY_MS = 400;

/** Field name -> the text the user left in it. */
export type FormTexts = Record<string, string>;

/** What the memory needs of a state database (IStateDB has both). */
export interface IStateStore {
  fetch(id: string): Promise<unknown>;
  save(id: string, value: FormTexts): Promise<unknown>;
}

/** The saved texts of the fields the form has (anything else in the store, e.g. from an older form, is left). */
export function restorableTexts(saved: unknown, names: readonly string[]): FormTexts {
  if (typeof saved !== 'object' || saved === null || Array.isArray(saved)) {
    return {};
  }
  const out: FormTexts = {};
  for (const name of names) {
    const value = (saved as Record<string, unknown>)[name];
    if (typeof value === 'string') {
      out[name] = value;
    }
  }
  return out;
}

/** Saves the form's texts a moment after each change and reads them back. A failing store is reported, never thrown. */
export class FormMemory {
  constructor(
    private store: IStateStore,
    private options: { key?: string; delayMs?: number; onError?: (error: unknown) => void } = {}
  ) {}

  private get key(): string {
    return this.options.key ?? FORM_STATE_KEY;
  }

  /** The saved texts of the fields `names` ({} when none were saved or the store failed). */
  async restore(names: readonly string[]): Promise<FormTexts> {
    try {
      return restorableTexts(await this.store.fetch(this.key), names);
    } catch (error) {
      this.options.onError?.(error);
      return {};
    }
  }

  /** Save `texts` once no other change came for the delay (the last texts win). */
  remember(texts: FormTexts): void {
    this.pending = { ...texts };
    if (this.timer !== null) {
      clearTimeout(this.timer);
    }
    this.timer = setTimeout(() => void this.flush(), this.options.delayMs ?? SAVE_DELAY_MS);
  }

  /** Save what is pending now. */
  async flush(): Promise<void> {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const texts = this.pending;
    this.pending = null;
    if (texts === null) {
      return;
    }
    try {
      await this.store.save(this.key, texts);
    } catch (error) {
      this.options.onError?.(error);
    }
  }

  /** Stop without saving what is pending. */
  dispose(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.pending = null;
  }

  private pending: FormTexts | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
}
