/**
 * TuningPanelModel with a fake API and jest's fake timers: its signals, the poll's pace (fast while a
 * job is under way, backing off after failures, standing by while nobody looks) and its errors.
 */
import { ITuneAPI } from '../api';
import { IDLE_FACTOR, MAX_BACKOFF_MS, TuningPanelModel } from '../model';
import { IAction, IJobSummary, IParameter, ISchema } from '../types';

const STATES = {
  all: ['JOB_STATE_RUNNING', 'JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED'],
  active: ['JOB_STATE_RUNNING'],
  final: ['JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED'],
  cancellable: ['JOB_STATE_RUNNING'],
  succeeded: 'JOB_STATE_SUCCEEDED'
};

function param(name: string, type: IParameter['type'], extra: Partial<IParameter> = {}): IParameter {
  return {
    name,
    label: name,
    type,
    nullable: true,
    default: null,
    help: '',
    group: 'advanced',
    choices: null,
    minimum: null,
    maximum: null,
    exclusive: false,
    kind: null,
    ...extra
  };
}

const SCHEMA: ISchema = {
  parameters: [param('base_model', 'str', { group: 'basic' }), param('warmup_ratio', 'float')],
  action_parameters: [param('job_id', 'str'), param('job_ids', 'list[str]')],
  entry_points: {},
  recommended_learning_rate: 0.0002,
  recommended_learning_rates: { lora: 0.001 },
  states: STATES
};

function action(id: string, params: string[], button = true, data: string[] = []): IAction {
  return { id, label: id, description: '', params, button, defaults: {}, job: 'optional', data };
}

const ACTIONS = [
  action('tune', ['base_model']),
  action('evaluate', ['base_model', 'job_id']),
  action('compare', ['job_ids'], false)
];

function job(id: string, state: string): IJobSummary {
  return {
    id,
    display_name: null,
    state,
    base_model: 'm',
    create_time: null,
    start_time: null,
    end_time: null,
    progress: {},
    error: null
  };
}

/** A fake API whose job list the test sets. */
type FakeAPI = jest.Mocked<ITuneAPI> & { jobs: IJobSummary[] };

function fakeAPI(jobs: IJobSummary[] = []): FakeAPI {
  const api: FakeAPI = {
    jobs,
    listJobs: jest.fn(async () => api.jobs),
    getJob: jest.fn(),
    cancelJob: jest.fn(async () => job('x', 'JOB_STATE_CANCELLING')),
    deleteJob: jest.fn(async () => undefined),
    getTemplates: jest.fn(async () => ACTIONS),
    makeCells: jest.fn(async () => [{ cell_type: 'code' as const, source: 'x' }]),
    getSchema: jest.fn(async () => SCHEMA),
    checkDataset: jest.fn()
  } as any;
  return api;
}

/** Let timers up to `ms` fire and the promises they start settle. */
async function elapse(ms = 0): Promise<void> {
  await jest.advanceTimersByTimeAsync(ms);
}

/** model.refresh(), whose poll tick runs on a (fake) timer. */
async function refreshed(): Promise<void> {
  const done = model.refresh();
  await elapse();
  await done;
}

let model: TuningPanelModel;
let visible: boolean;

function makeModel(api: ITuneAPI, pollInterval = 2): TuningPanelModel {
  visible = true;
  model = new TuningPanelModel({ api, pollInterval, standby: () => !visible });
  return model;
}

beforeEach(() => {
  jest.useFakeTimers();
  jest.spyOn(console, 'error').mockImplementation(() => undefined);
});

afterEach(() => {
  model?.dispose();
  jest.useRealTimers();
  jest.restoreAllMocks();
});

describe('TuningPanelModel', () => {
  it('loads the schema and actions, then the jobs, each with its signal', async () => {
    const api = fakeAPI([job('a', 'JOB_STATE_SUCCEEDED'), job('b', 'JOB_STATE_FAILED')]);
    makeModel(api);
    const seen: string[] = [];
    model.stateChanged.connect(() => seen.push('state'));
    model.jobsChanged.connect((_, jobs) => seen.push(`jobs:${jobs.length}`));
    await model.start();
    await elapse();
    expect(seen).toEqual(['state', 'jobs:2']);
    expect(model.mainParameters.map(p => p.name)).toEqual(['base_model']);
    expect(model.buttonActions.map(a => a.id)).toEqual(['tune', 'evaluate']);
    expect(model.succeededJobs.map(j => j.id)).toEqual(['a']);
    expect(model.isFailed(model.jobs[1])).toBe(true);
    expect(model.error).toBeNull();
  });

  it('says the server extension did not answer when the schema fails', async () => {
    const api = fakeAPI();
    api.getSchema.mockRejectedValue(new Error('404 Not Found'));
    makeModel(api);
    const errors: (string | null)[] = [];
    model.errorChanged.connect((_, e) => errors.push(e));
    const state = jest.fn();
    model.stateChanged.connect(state);
    await model.start();
    expect(state).toHaveBeenCalledTimes(1);
    expect(model.schema).toBeNull();
    expect(errors).toEqual(['The jupyter_tune server extension did not answer: 404 Not Found']);
  });

  it('polls IDLE_FACTOR times slower while no job is under way', async () => {
    const api = fakeAPI([job('a', 'JOB_STATE_SUCCEEDED')]);
    makeModel(api, 2);
    await model.start();
    await elapse();
    expect(model.pollFrequency.interval).toBe(2000 * IDLE_FACTOR);
    expect(api.listJobs).toHaveBeenCalledTimes(1);
    await elapse(2000 * IDLE_FACTOR);
    expect(api.listJobs).toHaveBeenCalledTimes(2);

    api.jobs = [job('b', 'JOB_STATE_RUNNING')];
    await refreshed();
    expect(model.pollFrequency.interval).toBe(2000);
    await elapse(2000);
    expect(api.listJobs).toHaveBeenCalledTimes(4);

    model.pollInterval = 0.5; // a settings change applies at once
    expect(model.pollFrequency).toMatchObject({ interval: 500, max: MAX_BACKOFF_MS });
  });

  it('backs off after failures, up to the maximum, and clears its error on success', async () => {
    const api = fakeAPI();
    api.listJobs.mockRejectedValue(new Error('502 Bad Gateway'));
    jest.spyOn(Math, 'random').mockReturnValue(0.5); // Lumino's jitter, made repeatable
    makeModel(api, 2);
    await model.start();
    await elapse();
    expect(model.error).toBe('Could not load the tuning jobs: 502 Bad Gateway');
    expect(model.pollState.phase).toBe('rejected');
    const intervals: number[] = [];
    for (let i = 0; i < 6; i++) {
      await elapse(model.pollState.interval);
      intervals.push(model.pollState.interval);
    }
    expect(api.listJobs).toHaveBeenCalledTimes(7);
    expect(intervals[0]).toBeGreaterThanOrEqual(2000 * IDLE_FACTOR); // never faster than the idle pace
    intervals.slice(1).forEach((interval, i) => expect(interval).toBeGreaterThanOrEqual(intervals[i]));
    expect(intervals[intervals.length - 1]).toBe(MAX_BACKOFF_MS);

    api.listJobs.mockImplementation(async () => []);
    const cleared = jest.fn();
    model.errorChanged.connect(cleared);
    await elapse(model.pollState.interval);
    expect(model.pollState.phase).toBe('reconnected');
    expect(model.error).toBeNull();
    expect(cleared).toHaveBeenCalledWith(model, null);
    expect(model.pollState.interval).toBe(2000 * IDLE_FACTOR); // back to its pace
  });

  it('leaves another error in place when the job list loads', async () => {
    const api = fakeAPI();
    makeModel(api);
    await model.start();
    await elapse();
    model.setError('Check the highlighted field: Epochs: 0 is below the minimum 1');
    await refreshed();
    expect(model.error).toMatch(/^Check the highlighted field/);
  });

  it('stands by while nobody looks and refreshes when woken', async () => {
    const api = fakeAPI([job('a', 'JOB_STATE_RUNNING')]);
    makeModel(api, 1);
    await model.start();
    await elapse();
    expect(api.listJobs).toHaveBeenCalledTimes(1);
    visible = false;
    await elapse(10_000);
    expect(api.listJobs).toHaveBeenCalledTimes(1);
    visible = true;
    model.wake();
    await elapse();
    expect(api.listJobs).toHaveBeenCalledTimes(2);
  });

  it('keeps the selection to listed jobs and signals each change', async () => {
    const api = fakeAPI([job('a', 'JOB_STATE_SUCCEEDED'), job('b', 'JOB_STATE_SUCCEEDED')]);
    makeModel(api);
    await model.start();
    await elapse();
    const selections: string[][] = [];
    model.selectionChanged.connect((_, s) => selections.push([...s]));
    model.setSelected('b', true);
    model.setSelected('b', true); // no change: no signal
    model.setSelected('a', true);
    api.jobs = [job('a', 'JOB_STATE_SUCCEEDED')]; // b was deleted elsewhere
    await refreshed();
    expect(selections).toEqual([['b'], ['b', 'a'], ['a']]);
  });

  it("builds an action's params from what it lists, checked against the action parameters", async () => {
    const api = fakeAPI([job('a', 'JOB_STATE_SUCCEEDED'), job('b', 'JOB_STATE_SUCCEEDED')]);
    makeModel(api);
    await model.start();
    await elapse();
    const form = { base_model: 'tiny', warmup_ratio: 0.1 };
    expect(model.paramsFor('evaluate', form, 'a')).toEqual({ base_model: 'tiny', job_id: 'a' });
    model.setSelected('b', true);
    model.setSelected('a', true);
    expect(model.paramsFor('compare', form, null)).toEqual({ job_ids: ['a', 'b'] }); // the list's order
    expect(() => model.paramsFor('evaluate', form, 7 as any)).toThrow('evaluate: job_id (job_id) must be text');
    expect(() => model.paramsFor('nope', form, null)).toThrow('The server offers no "nope" action');

    await model.cells('tune', form, null);
    expect(api.makeCells).toHaveBeenCalledWith('tune', { base_model: 'tiny' });
  });

  it("takes a command's values beside the form's, checked like the job's", async () => {
    const api = fakeAPI([job('a', 'JOB_STATE_SUCCEEDED'), job('b', 'JOB_STATE_SUCCEEDED')]);
    makeModel(api);
    await model.start();
    await elapse();
    model.setSelected('a', true);
    const form = { base_model: 'tiny' };
    // job_ids given to the command win over the jobs checked in the list
    expect(model.paramsFor('compare', form, null, { job_ids: ['b'] })).toEqual({ job_ids: ['b'] });
    expect(() => model.paramsFor('compare', form, null, { job_ids: 'b' })).toThrow(
      'compare: job_ids (job_ids) must be a list of text'
    );
    expect(model.action('compare')?.params).toEqual(['job_ids']);
    expect(model.action('nope')).toBeUndefined();
  });

  it("sends tune's holdout only where the server's action reads it", async () => {
    const api = fakeAPI();
    api.getTemplates.mockResolvedValue([action('tune', ['base_model', 'holdout']), action('evaluate', ['base_model'])]);
    makeModel(api);
    await model.start();
    expect(model.actionTakes('tune', 'holdout')).toBe(true);
    expect(model.actionTakes('evaluate', 'holdout')).toBe(false);
    const form = { base_model: 'tiny', holdout: 0.1 };
    expect(model.paramsFor('tune', form, null)).toEqual({ base_model: 'tiny', holdout: 0.1 });
    expect(model.paramsFor('evaluate', form, null)).toEqual({ base_model: 'tiny' });
  });

  it('asks for the rows an action runs on, as the server does, never taking the training data', async () => {
    const api = fakeAPI();
    const rows = ['dataset', 'validation_dataset'];
    api.getTemplates.mockResolvedValue([
      action('evaluate', ['base_model', 'job_id', 'dataset', 'validation_dataset'], true, rows)
    ]);
    api.getSchema.mockResolvedValue({
      ...SCHEMA,
      parameters: [...SCHEMA.parameters, param('validation_dataset', 'str', { label: 'Validation data' })],
      action_parameters: [...SCHEMA.action_parameters, param('dataset', 'str', { label: 'Dataset' })]
    });
    makeModel(api);
    await model.start();
    const form = { base_model: 'tiny', train_dataset: 'train.jsonl', validation_dataset: null };
    expect(() => model.paramsFor('evaluate', form, 'a')).toThrow(
      'evaluate: fill in Validation data, the rows it runs on (the training data is never used for this).'
    );
    await expect(model.cells('evaluate', { ...form, validation_dataset: '  ' }, null)).rejects.toThrow(
      'fill in Validation data'
    );
    expect(api.makeCells).not.toHaveBeenCalled();
    expect(model.paramsFor('evaluate', { ...form, validation_dataset: 'val.jsonl' }, 'a')).toEqual({
      base_model: 'tiny',
      job_id: 'a',
      validation_dataset: 'val.jsonl'
    });
    expect(() => model.paramsFor('evaluate', { base_model: 'tiny' }, null)).toThrow(
      'fill in Dataset or Validation data'
    );
  });

  it('names the job when cancelling fails, and refreshes the list', async () => {
    const api = fakeAPI([job('a', 'JOB_STATE_RUNNING')]);
    api.cancelJob.mockRejectedValue(new Error('job a already ended'));
    makeModel(api);
    await model.start();
    await elapse();
    const done = model.cancelJob(model.jobs[0]);
    await elapse();
    await done;
    await expect(done).resolves.toBeNull();
    expect(api.cancelJob).toHaveBeenCalledWith('a');
    expect(model.error).toBe('a: job a already ended');
    expect(api.listJobs).toHaveBeenCalledTimes(2);
  });

  it("resolves to the cancelled job's summary", async () => {
    const api = fakeAPI([job('a', 'JOB_STATE_RUNNING')]);
    makeModel(api);
    await model.start();
    await elapse();
    const done = model.cancelJob(model.jobs[0]);
    await elapse();
    await expect(done).resolves.toMatchObject({ state: 'JOB_STATE_CANCELLING' });
    expect(model.error).toBeNull();
  });

  it('stops polling once disposed', async () => {
    const api = fakeAPI([job('a', 'JOB_STATE_RUNNING')]);
    makeModel(api, 1);
    await model.start();
    await elapse();
    model.dispose();
    await elapse(60_000);
    expect(api.listJobs).toHaveBeenCalledTimes(1);
    expect(model.isDisposed).toBe(true);
  });
});
