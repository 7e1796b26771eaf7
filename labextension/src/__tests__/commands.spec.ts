/**
 * The panel's JupyterLab commands (commands.ts) on a real lumino CommandRegistry with a fake panel: each
 * has a label, a caption, an icon and typed arguments; a command's arguments reach the panel as its
 * button's would; the file browser's items fill the form and check the file.
 */
import { CommandRegistry } from '@lumino/commands';

import {
  ACTION_COMMANDS,
  CATEGORY,
  CommandIDs,
  FILE_BROWSER_COMMANDS,
  ICommandOptions,
  IPanelActions,
  PALETTE_COMMANDS,
  addCommands,
  formPath,
  isDataFile,
  parameterSchema,
  serverPath
} from '../commands';
import { IAction, IHealthReport, IParameter, ISchema } from '../types';

function param(name: string, type: IParameter['type'], extra: Partial<IParameter> = {}): IParameter {
  return {
    name,
    label: name,
    type,
    nullable: false,
    default: null,
    help: `help of ${name}`,
    group: 'basic',
    choices: null,
    minimum: null,
    maximum: null,
    exclusive: false,
    kind: null,
    ...extra
  };
}

const SCHEMA: ISchema = {
  parameters: [
    param('base_model', 'str', { default: 'm' }),
    param('train_dataset', 'str', { nullable: true, kind: 'dataset' }),
    param('epochs', 'int', { default: 3, minimum: 1, maximum: 100 }),
    param('adapter_size', 'int', { choices: [1, 4, 8], default: 8 })
  ],
  action_parameters: [
    param('job_id', 'str', { nullable: true }),
    param('job_ids', 'list[str]'),
    param('holdout', 'float', { nullable: true, minimum: 0, maximum: 1, exclusive: true })
  ],
  entry_points: {},
  recommended_learning_rate: 0.0002,
  recommended_learning_rates: {},
  states: { all: [], active: [], final: [], cancellable: [], succeeded: 'JOB_STATE_SUCCEEDED' }
};

const ACTIONS: Record<string, IAction> = Object.fromEntries(
  [
    ['tune', ['base_model', 'train_dataset', 'epochs', 'adapter_size', 'holdout']],
    ['evaluate', ['base_model', 'job_id', 'dataset']],
    ['generate', ['base_model', 'job_id', 'dataset']],
    ['test', ['job_id', 'prompt']],
    ['compare', ['job_ids']],
    ['export', ['job_id', 'dest', 'format']],
    ['view', ['job_id']]
  ].map(([id, params]) => [
    id as string,
    { id, label: id, description: '', params, button: true, defaults: {}, job: 'optional', data: [] } as IAction
  ])
);

const REPORT: IHealthReport = {
  findings: [],
  counts: {},
  rows: { train: 3 },
  labels: null,
  sources: { train: 'data/train.jsonl' },
  units: { train: 'line' },
  threshold: 0.8,
  seconds: 0.01
};

type FakePanel = { [K in keyof IPanelActions]: IPanelActions[K] extends (...a: any[]) => any ? jest.Mock : any };

let commands: CommandRegistry;
let panel: FakePanel;
let options: ICommandOptions & { [key: string]: any };
let form: Record<string, string>;
let selected: string | null;

beforeEach(() => {
  form = {};
  selected = null;
  panel = {
    ready: Promise.resolve(),
    schema: SCHEMA,
    action: jest.fn((id: string) => ACTIONS[id]),
    runAction: jest.fn(async () => [{ cell_type: 'code', source: 'x' }]),
    cancelJob: jest.fn(async (id: string | null) => ({ id: id ?? 'newest', state: 'JOB_STATE_CANCELLING' })),
    fill: jest.fn(),
    text: jest.fn((name: string) => form[name] ?? ''),
    setError: jest.fn()
  };
  options = {
    panel: panel as unknown as IPanelActions,
    icons: {
      tune: 'tune-icon',
      evaluate: 'evaluate-icon',
      generate: 'generate-icon',
      test: 'test-icon',
      compare: 'compare-icon',
      export: 'export-icon',
      view: 'view-icon',
      cancel: 'cancel-icon',
      check: 'check-icon'
    },
    showPanel: jest.fn(),
    checkDataset: jest.fn(async () => REPORT),
    showReport: jest.fn(),
    showError: jest.fn(),
    formFolder: jest.fn(() => 'data'),
    selectedFile: () => selected
  };
  commands = new CommandRegistry();
  addCommands(commands, options);
});

describe('the commands', () => {
  const ALL = [...PALETTE_COMMANDS, ...FILE_BROWSER_COMMANDS];

  it('are every panel action, each with a label, a caption, an icon and typed arguments', async () => {
    expect(CATEGORY).toBe('Tuning');
    expect(PALETTE_COMMANDS).toEqual([
      'jupyter-tune:open-panel',
      'jupyter-tune:tune',
      'jupyter-tune:evaluate',
      'jupyter-tune:generate',
      'jupyter-tune:test',
      'jupyter-tune:compare',
      'jupyter-tune:export',
      'jupyter-tune:view-job',
      'jupyter-tune:cancel-job',
      'jupyter-tune:check-dataset'
    ]);
    for (const id of ALL) {
      expect(commands.hasCommand(id)).toBe(true);
      expect(commands.label(id)).not.toBe('');
      expect(commands.caption(id)).not.toBe('');
      expect(commands.icon(id)).toBeTruthy();
      const { args } = await commands.describedBy(id);
      expect(args).toMatchObject({ type: 'object', additionalProperties: false });
    }
    expect(new Set(ALL.map(id => commands.label(id))).size).toBe(ALL.length);
  });

  it("type an action's arguments from the server's schema", async () => {
    const { args } = await commands.describedBy(CommandIDs.tune);
    const props = (args as any).properties;
    expect(Object.keys(props)).toEqual(['base_model', 'train_dataset', 'epochs', 'adapter_size', 'holdout']);
    expect(props.epochs).toMatchObject({ type: 'integer', minimum: 1, maximum: 100, default: 3 });
    expect(props.adapter_size).toMatchObject({ type: 'integer', enum: [1, 4, 8] });
    expect(props.train_dataset).toMatchObject({ type: ['string', 'null'], description: 'help of train_dataset' });
    expect(props.holdout).toMatchObject({ exclusiveMinimum: 0, exclusiveMaximum: 1 });
    const view = await commands.describedBy(CommandIDs.view);
    expect((view.args as any).properties.job_id.type).toEqual(['string', 'null']);
    const check = await commands.describedBy(CommandIDs.checkDataset);
    expect(Object.keys((check.args as any).properties)).toEqual(['path', 'validation_path', 'prompt_template']);
    expect(parameterSchema(param('graders', 'list[dict]'))).toMatchObject({ type: 'array', items: { type: 'object' } });
  });

  it('run an action with the arguments given, as its button does (View and Compare run their cells)', async () => {
    const reply = await commands.execute(CommandIDs.tune, { train_dataset: 'x.jsonl', epochs: 2 });
    expect(panel.runAction).toHaveBeenCalledWith('tune', { train_dataset: 'x.jsonl', epochs: 2 }, false);
    expect(reply).toEqual({ cells: [{ cell_type: 'code', source: 'x' }] });
    await commands.execute(CommandIDs.evaluate);
    expect(panel.runAction).toHaveBeenLastCalledWith('evaluate', {}, false);
    // a key binding's execution carries lumino's event: not an argument
    await commands.execute(CommandIDs.tune, { _luminoEvent: { type: 'keybinding', keys: ['Accel Enter'] } });
    expect(panel.runAction).toHaveBeenLastCalledWith('tune', {}, false);
    for (const spec of ACTION_COMMANDS) {
      await commands.execute(spec.id, spec.action === 'compare' ? { job_ids: ['a'] } : {});
      expect(panel.runAction).toHaveBeenLastCalledWith(
        spec.action,
        spec.action === 'compare' ? { job_ids: ['a'] } : {},
        spec.action === 'view' || spec.action === 'compare'
      );
    }
    expect(options.showPanel).not.toHaveBeenCalled();
  });

  it('refuse an argument the action does not take, in the panel', async () => {
    await expect(commands.execute(CommandIDs.view, { job: 'a' })).rejects.toThrow(
      'jupyter-tune:view-job: unknown argument job; it takes job_id.'
    );
    expect(panel.runAction).not.toHaveBeenCalled();
    expect(panel.setError).toHaveBeenCalledWith(expect.stringContaining('unknown argument job'));
    expect(options.showPanel).toHaveBeenCalled();
  });

  it('show the panel when the action fails there', async () => {
    panel.runAction.mockRejectedValue(new Error('Training data: a value is needed'));
    await expect(commands.execute(CommandIDs.tune)).rejects.toThrow('a value is needed');
    expect(options.showPanel).toHaveBeenCalled();
  });

  it('cancel the job given, or the newest running one', async () => {
    await expect(commands.execute(CommandIDs.cancel, { job_id: 'a' })).resolves.toMatchObject({ id: 'a' });
    await commands.execute(CommandIDs.cancel);
    expect(panel.cancelJob.mock.calls).toEqual([['a'], [null]]);
    await expect(commands.execute(CommandIDs.cancel, { job_id: 3 })).rejects.toThrow('job_id must be text');
  });

  it('open the panel', async () => {
    await commands.execute(CommandIDs.open);
    expect(options.showPanel).toHaveBeenCalled();
  });
});

describe('Check a dataset', () => {
  it('checks the path given and shows the report without waiting for it', async () => {
    await expect(commands.execute(CommandIDs.checkDataset, { path: 'data/train.jsonl' })).resolves.toBe(REPORT);
    expect(options.checkDataset).toHaveBeenCalledWith({
      path: 'data/train.jsonl',
      validation_path: null,
      prompt_template: null
    });
    expect(options.showReport).toHaveBeenCalledWith(REPORT);
  });

  it("checks the form's training and validation data, as the server's root names them", async () => {
    form = { train_dataset: 'train.jsonl', validation_dataset: '../eval.jsonl' };
    await commands.execute(CommandIDs.checkDataset);
    expect(options.checkDataset).toHaveBeenCalledWith({
      path: 'data/train.jsonl',
      validation_path: 'eval.jsonl',
      prompt_template: null
    });
  });

  it('says what to fill in when the form has no training data, and shows the server refusal', async () => {
    await expect(commands.execute(CommandIDs.checkDataset)).rejects.toThrow('fill in Training data');
    expect(options.showError).toHaveBeenCalledWith('Check a dataset', expect.any(Error));
    (options.checkDataset as jest.Mock).mockRejectedValue(new Error("no file 'x.jsonl'"));
    await expect(commands.execute(CommandIDs.checkDataset, { path: 'x.jsonl' })).rejects.toThrow('no file');
    expect(options.showError).toHaveBeenLastCalledWith('Check a dataset: x.jsonl', expect.any(Error));
    expect(options.showReport).not.toHaveBeenCalled();
  });
});

describe("the file browser's items", () => {
  it('show on .jsonl, .csv and .parquet files only', () => {
    for (const [file, shown] of [
      ['data/train.jsonl', true],
      ['rows.CSV', true],
      ['a.parquet', true],
      ['notes.txt', false],
      ['rows.ndjson', false],
      [null, false]
    ] as const) {
      selected = file;
      expect(commands.isVisible(CommandIDs.tuneFile)).toBe(shown);
      expect(commands.isVisible(CommandIDs.checkFile)).toBe(shown);
      expect(isDataFile(file)).toBe(shown);
    }
    expect(commands.isVisible(CommandIDs.tuneFile, { path: 'x' })).toBe(true);
  });

  it('"Tune a model on this file" opens the panel with the file as Training data, as the picker names it', async () => {
    selected = 'data/train.jsonl';
    await expect(commands.execute(CommandIDs.tuneFile)).resolves.toEqual({ train_dataset: 'train.jsonl' });
    expect(panel.fill).toHaveBeenCalledWith({ train_dataset: 'train.jsonl' });
    expect(options.showPanel).toHaveBeenCalled();
    expect(panel.runAction).not.toHaveBeenCalled(); // it fills the form; Tune is the user's click
    (options.formFolder as jest.Mock).mockReturnValue('');
    await commands.execute(CommandIDs.tuneFile, { path: 'sub/rows.csv' });
    expect(panel.fill).toHaveBeenLastCalledWith({ train_dataset: 'sub/rows.csv' });
    selected = null;
    await expect(commands.execute(CommandIDs.tuneFile)).rejects.toThrow('select a data file');
  });

  it('"Check this dataset" checks the selected file', async () => {
    selected = 'data/train.jsonl';
    await commands.execute(CommandIDs.checkFile);
    expect(options.checkDataset).toHaveBeenCalledWith({
      path: 'data/train.jsonl',
      validation_path: null,
      prompt_template: null
    });
    expect(options.showReport).toHaveBeenCalledWith(REPORT);
  });

  it('paths move between the server root and the form folder', () => {
    expect(serverPath('train.jsonl', 'data')).toBe('data/train.jsonl');
    expect(serverPath(' ../x.csv ', 'data/sub')).toBe('data/x.csv');
    expect(serverPath('/abs/x.csv', 'data')).toBe('/abs/x.csv');
    expect(formPath('data/train.jsonl', 'data')).toBe('train.jsonl');
    expect(formPath('/train.jsonl', 'data')).toBe('../train.jsonl');
    expect(formPath('x.jsonl', '')).toBe('x.jsonl');
  });
});
