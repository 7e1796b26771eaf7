/**
 * Every Tuning panel action as a JupyterLab command (issue 37): a label, a caption, an icon and typed
 * arguments (`describedBy`), in the command palette under "Tuning", and the two file browser items for
 * data files. The panel's buttons execute these same commands, so a button, the palette, a shortcut, the
 * file browser and an agent calling JupyterLab commands all take one code path.
 *
 * A command run with arguments puts the ones that are form fields into the form, then does what the button
 * does with the form's values; with no arguments it uses the form as it is. No DOM and no JupyterLab widget
 * here (index.ts wires the panel, the file browser and the dialogs in), so jest can test it as it is.
 */
import { PathExt } from '@jupyterlab/coreutils';
import type { CommandRegistry } from '@lumino/commands';
import type { ReadonlyJSONObject, ReadonlyPartialJSONObject } from '@lumino/coreutils';

import type { IAction, ICell, ICheckRequest, IHealthReport, IJobSummary, IParameter, ISchema } from './types';

/** The command palette's category of every command here. */
export const CATEGORY = 'Tuning';

/** The command ids; `jupyter-tune:<action>` for the panel's actions (cells/render.py ACTIONS). */
export const CommandIDs = {
  open: 'jupyter-tune:open-panel',
  tune: 'jupyter-tune:tune',
  evaluate: 'jupyter-tune:evaluate',
  generate: 'jupyter-tune:generate',
  test: 'jupyter-tune:test',
  compare: 'jupyter-tune:compare',
  export: 'jupyter-tune:export',
  view: 'jupyter-tune:view-job',
  cancel: 'jupyter-tune:cancel-job',
  checkDataset: 'jupyter-tune:check-dataset',
  tuneFile: 'jupyter-tune:tune-file',
  checkFile: 'jupyter-tune:check-file'
} as const;

/** The data files the file browser's items apply to (the formats jt.tune and jt.check_dataset read). */
export const DATA_FILE_EXTENSIONS: readonly string[] = ['.jsonl', '.csv', '.parquet'];

/** A command that renders one server action's cells (POST cells) and inserts them, as its button does. */
interface IActionCommand {
  id: string;
  /** The server's action id (GET templates). */
  action: string;
  label: string;
  caption: string;
  icon: keyof ICommandIcons;
  /** Run the inserted cells (View and Compare show their result at once, as their buttons do). */
  run: boolean;
}

export const ACTION_COMMANDS: readonly IActionCommand[] = [
  {
    id: CommandIDs.tune,
    action: 'tune',
    label: 'Tune a model',
    caption: "Insert a parameters cell and a cell that starts a tuning job with the Tuning panel's values",
    icon: 'tune',
    run: false
  },
  {
    id: CommandIDs.evaluate,
    action: 'evaluate',
    label: 'Evaluate a model',
    caption: 'Insert a cell that scores the base model (or a tuned job) on a labelled dataset',
    icon: 'evaluate',
    run: false
  },
  {
    id: CommandIDs.generate,
    action: 'generate',
    label: 'Generate text',
    caption: 'Insert a cell that generates a response for every row of a dataset',
    icon: 'generate',
    run: false
  },
  {
    id: CommandIDs.test,
    action: 'test',
    label: 'Test a tuned model',
    caption: "Insert a cell that prompts a tuned job's model (the newest succeeded job unless one is given)",
    icon: 'test',
    run: false
  },
  {
    id: CommandIDs.compare,
    action: 'compare',
    label: 'Compare jobs',
    caption: 'Insert and run a cell that compares jobs side by side (the jobs checked in the panel by default)',
    icon: 'compare',
    run: true
  },
  {
    id: CommandIDs.export,
    action: 'export',
    label: 'Export a tuned model',
    caption: "Insert a cell that exports a tuned job's model (merged, adapter or GGUF) and checks it",
    icon: 'export',
    run: false
  },
  {
    id: CommandIDs.view,
    action: 'view',
    label: 'View a job',
    caption: "Insert and run a cell that shows a job's live view",
    icon: 'view',
    run: true
  }
];

/** The command that runs a server action (undefined: none, the panel runs it itself). */
export function commandForAction(actionId: string): string | undefined {
  return ACTION_COMMANDS.find(c => c.action === actionId)?.id;
}

/** One icon per command (LabIcons in the lab; anything in tests). */
export interface ICommandIcons {
  tune: unknown;
  evaluate: unknown;
  generate: unknown;
  test: unknown;
  compare: unknown;
  export: unknown;
  view: unknown;
  cancel: unknown;
  check: unknown;
}

/** What the commands need of the Tuning panel (panel.ts's TuningPanel). */
export interface IPanelActions {
  /** Resolves once the server's schema and actions are in (or failed to come) and the form is drawn. */
  readonly ready: Promise<void>;
  /** GET schema's reply; null until it arrives or when the server did not answer. */
  readonly schema: ISchema | null;
  /** The server's action `id` (GET templates). */
  action(id: string): IAction | undefined;
  /** Fill the form's fields from `args`, then render the action with the form's values and insert its
   * cells, as its button does; a problem shows in the panel and rejects. */
  runAction(actionId: string, args: Record<string, unknown>, run: boolean): Promise<ICell[]>;
  /** Cancel job `jobId` (null: the newest queued or running job); a problem shows in the panel and rejects. */
  cancelJob(jobId: string | null): Promise<IJobSummary>;
  /** Put values in the form's fields, as typed by the user. */
  fill(values: Record<string, unknown>): void;
  /** What form field `name` holds as typed ('' when empty or absent). */
  text(name: string): string;
  /** Show a message in the panel's error box (null clears it). */
  setError(message: string | null): void;
}

export interface ICommandOptions {
  panel: IPanelActions;
  icons: ICommandIcons;
  /** Show (and expand) the Tuning panel. */
  showPanel: () => void;
  /** POST check-dataset. */
  checkDataset: (request: ICheckRequest) => Promise<IHealthReport>;
  /** Show a health report (a dialog); never waits for it to close. */
  showReport: (report: IHealthReport) => void;
  /** Show an error that has no place in the panel (a dialog). */
  showError: (title: string, error: unknown) => void;
  /** The folder the form's relative paths start from: the current notebook's, else the file browser's. */
  formFolder: () => string;
  /** The file selected in the file browser, relative to the server's root; null without one (or no browser). */
  selectedFile?: () => string | null;
}

/** A JSON schema (draft 7 subset) for one of the schema's parameter declarations. */
export function parameterSchema(param: IParameter): ReadonlyJSONObject {
  const out: Record<string, any> = { title: param.label, description: param.help || param.label };
  const type = (
    {
      bool: 'boolean',
      int: 'integer',
      float: 'number',
      str: 'string',
      'list[str]': 'array',
      'list[dict]': 'array',
      dict: 'object',
      any: null
    } as Record<string, string | null>
  )[param.type];
  if (type) {
    out.type = param.nullable ? [type, 'null'] : type;
  }
  if (param.type === 'list[str]') {
    out.items = { type: 'string' };
  } else if (param.type === 'list[dict]') {
    out.items = { type: 'object' };
  }
  if (param.choices) {
    out.enum = param.nullable && !param.choices.includes(null) ? [...param.choices, null] : [...param.choices];
  }
  if (param.minimum !== null) {
    out[param.exclusive ? 'exclusiveMinimum' : 'minimum'] = param.minimum;
  }
  if (param.maximum !== null) {
    out[param.exclusive ? 'exclusiveMaximum' : 'maximum'] = param.maximum;
  }
  if (param.default !== null && param.default !== undefined) {
    out.default = param.default as any;
  }
  return out;
}

/** The arguments of an action's command: the parameters the action reads (GET templates), typed as GET
 * schema declares them. */
export function actionArgsSchema(action: IAction | undefined, schema: ISchema | null): ReadonlyJSONObject {
  const declared = new Map([...(schema?.parameters ?? []), ...(schema?.action_parameters ?? [])].map(p => [p.name, p]));
  const properties: Record<string, ReadonlyJSONObject> = {};
  for (const name of action?.params ?? []) {
    const param = declared.get(name);
    properties[name] = param ? parameterSchema(param) : { description: name };
  }
  return { type: 'object', properties, additionalProperties: action === undefined };
}

const JOB_ID_ARG = { type: 'string', description: 'The job id (as jt.list_jobs() and the job list show it)' };
const PATH_ARG = {
  type: 'string',
  description: 'A data file (.jsonl, .csv, .parquet) relative to the server root, as the file browser names it'
};
const FILE_ARGS: ReadonlyJSONObject = {
  type: 'object',
  properties: { path: { ...PATH_ARG, description: `${PATH_ARG.description}; default: the file selected there` } },
  additionalProperties: false
};
export const CANCEL_ARGS: ReadonlyJSONObject = {
  type: 'object',
  properties: { job_id: { ...JOB_ID_ARG, description: `${JOB_ID_ARG.description}; default: the newest running job` } },
  additionalProperties: false
};
export const CHECK_ARGS: ReadonlyJSONObject = {
  type: 'object',
  properties: {
    path: { ...PATH_ARG, description: `Training data: ${PATH_ARG.description}; default: the form's Training data` },
    validation_path: {
      type: ['string', 'null'],
      description: 'Validation data, checked for training rows leaking into it (relative to the server root)'
    },
    prompt_template: { type: ['string', 'null'], description: 'How rows become prompts (as jt.tune takes it)' }
  },
  additionalProperties: false
};

/** Whether `path` names a data file the file browser's items apply to. */
export function isDataFile(path: string | null | undefined): boolean {
  const ext = PathExt.extname(path ?? '').toLowerCase();
  return DATA_FILE_EXTENSIONS.includes(ext);
}

/** A form path (relative to `folder`, the kernel's working folder) as the server's root names it. */
export function serverPath(formPath: string, folder: string): string {
  const path = formPath.trim();
  return path.startsWith('/') || path.startsWith('~') ? path : PathExt.join(folder, path);
}

/** A path the server's root names (the file browser's) as the form holds it: relative to `folder`. */
export function formPath(rootPath: string, folder: string): string {
  return PathExt.relative(folder, PathExt.removeSlash(rootPath));
}

/** What "Check a dataset" with no arguments checks: the form's Training and Validation data. */
export function formCheckRequest(text: (name: string) => string, folder: string): ICheckRequest {
  const train = text('train_dataset').trim();
  if (!train) {
    throw new Error(
      'Check a dataset: fill in Training data in the Tuning panel, or right-click a data file in the ' +
        'file browser and choose "Check this dataset".'
    );
  }
  const validation = text('validation_dataset').trim();
  return {
    path: serverPath(train, folder),
    validation_path: validation ? serverPath(validation, folder) : null,
    prompt_template: text('prompt_template').trim() || null
  };
}

/** The arguments as a plain object; throws naming those the command does not take. Names starting with
 * '_' are the caller's own, not arguments (lumino adds `_luminoEvent` to a key binding's), and are left out. */
export function checkedArgs(
  command: string,
  args: ReadonlyPartialJSONObject,
  allowed: readonly string[]
): Record<string, unknown> {
  const given = Object.fromEntries(Object.entries(args).filter(([name]) => !name.startsWith('_')));
  const unknown = Object.keys(given).filter(name => !allowed.includes(name));
  if (unknown.length) {
    const takes = allowed.length ? `it takes ${allowed.join(', ')}` : 'it takes none';
    throw new Error(`${command}: unknown argument${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; ${takes}.`);
  }
  return given;
}

function optionalText(command: string, args: Record<string, unknown>, name: string): string | null {
  const value = args[name];
  if (value === undefined || value === null) {
    return null;
  }
  if (typeof value !== 'string') {
    throw new Error(`${command}: ${name} must be text, got ${JSON.stringify(value)}.`);
  }
  return value;
}

/** Register every command (the palette's items are added by `addToPalette`). */
export function addCommands(commands: CommandRegistry, options: ICommandOptions): void {
  const { panel, icons } = options;

  /** Show a problem in the panel (shown) and reject with it. */
  const fail = (error: unknown): never => {
    panel.setError(error instanceof Error ? error.message : String(error));
    options.showPanel();
    throw error;
  };

  commands.addCommand(CommandIDs.open, {
    label: 'Open Tuning panel',
    caption: 'Tune, evaluate and test language models',
    icon: icons.tune as any,
    describedBy: { args: { type: 'object', properties: {}, additionalProperties: false } },
    execute: () => options.showPanel()
  });

  for (const spec of ACTION_COMMANDS) {
    commands.addCommand(spec.id, {
      label: spec.label,
      caption: spec.caption,
      icon: icons[spec.icon] as any,
      describedBy: async () => {
        await panel.ready;
        return { args: actionArgsSchema(panel.action(spec.action), panel.schema) };
      },
      execute: async args => {
        await panel.ready;
        let given: Record<string, unknown>;
        try {
          given = checkedArgs(spec.id, args, panel.action(spec.action)?.params ?? Object.keys(args));
        } catch (error) {
          return fail(error);
        }
        try {
          return { cells: await panel.runAction(spec.action, given, spec.run) };
        } catch (error) {
          options.showPanel(); // the panel already shows the problem
          throw error;
        }
      }
    });
  }

  commands.addCommand(CommandIDs.cancel, {
    label: 'Cancel a job',
    caption: 'Stop a tuning job (the newest running one unless a job_id is given); it keeps its last checkpoint',
    icon: icons.cancel as any,
    describedBy: { args: CANCEL_ARGS },
    execute: async args => {
      let jobId: string | null;
      try {
        jobId = optionalText(CommandIDs.cancel, checkedArgs(CommandIDs.cancel, args, ['job_id']), 'job_id');
      } catch (error) {
        return fail(error);
      }
      try {
        return await panel.cancelJob(jobId);
      } catch (error) {
        options.showPanel();
        throw error;
      }
    }
  });

  commands.addCommand(CommandIDs.checkDataset, {
    label: 'Check a dataset',
    caption:
      'Report duplicates, conflicting labels, training rows leaking into validation and label counts ' +
      '(no job, no model)',
    icon: icons.check as any,
    describedBy: { args: CHECK_ARGS },
    execute: async args => {
      const title = 'Check a dataset';
      let request: ICheckRequest;
      try {
        const given = checkedArgs(CommandIDs.checkDataset, args, ['path', 'validation_path', 'prompt_template']);
        const path = optionalText(CommandIDs.checkDataset, given, 'path');
        const validation = optionalText(CommandIDs.checkDataset, given, 'validation_path');
        const template = optionalText(CommandIDs.checkDataset, given, 'prompt_template');
        if (path) {
          request = { path, validation_path: validation || null, prompt_template: template || null };
        } else {
          await panel.ready;
          request = formCheckRequest(name => panel.text(name), options.formFolder());
          request.validation_path = validation || request.validation_path;
          request.prompt_template = template || request.prompt_template;
        }
      } catch (error) {
        options.showError(title, error);
        throw error;
      }
      let report: IHealthReport;
      try {
        report = await options.checkDataset(request);
      } catch (error) {
        options.showError(`${title}: ${request.path}`, error);
        throw error;
      }
      options.showReport(report);
      return report;
    }
  });

  const fileArg = (command: string, args: ReadonlyPartialJSONObject): string => {
    const path = optionalText(command, checkedArgs(command, args, ['path']), 'path') ?? options.selectedFile?.();
    if (!path) {
      throw new Error(`${command}: select a data file (${DATA_FILE_EXTENSIONS.join(', ')}) in the file browser.`);
    }
    return path;
  };
  const onDataFile = (args: ReadonlyPartialJSONObject) =>
    typeof args.path === 'string' || isDataFile(options.selectedFile?.());

  commands.addCommand(CommandIDs.tuneFile, {
    label: 'Tune a model on this file',
    caption: 'Open the Tuning panel with this file as the Training data; choose the model and click Tune',
    icon: icons.tune as any,
    describedBy: { args: FILE_ARGS },
    isVisible: onDataFile,
    execute: async args => {
      let path: string;
      try {
        path = fileArg(CommandIDs.tuneFile, args);
      } catch (error) {
        return fail(error);
      }
      options.showPanel();
      await panel.ready;
      const train_dataset = formPath(path, options.formFolder());
      try {
        panel.fill({ train_dataset });
      } catch (error) {
        return fail(error);
      }
      panel.setError(null);
      return { train_dataset };
    }
  });

  commands.addCommand(CommandIDs.checkFile, {
    label: 'Check this dataset',
    caption: 'Report duplicates, conflicting labels and label counts of this file (no job, no model)',
    icon: icons.check as any,
    describedBy: { args: FILE_ARGS },
    isVisible: onDataFile,
    execute: async args => {
      let path: string;
      try {
        path = fileArg(CommandIDs.checkFile, args);
      } catch (error) {
        options.showError('Check this dataset', error);
        throw error;
      }
      return commands.execute(CommandIDs.checkDataset, { path });
    }
  });
}

/** The commands the palette lists (the file browser's two need a selected file: not there). */
export const PALETTE_COMMANDS: readonly string[] = [
  CommandIDs.open,
  ...ACTION_COMMANDS.map(c => c.id),
  CommandIDs.cancel,
  CommandIDs.checkDataset
];

/** The file browser's items on data files, in menu order. */
export const FILE_BROWSER_COMMANDS: readonly string[] = [CommandIDs.tuneFile, CommandIDs.checkFile];
