/**
 * The /jupyter-tune/ REST API, one typed function per endpoint (jupyter_tune/server/routes.py).
 * No other module spells an endpoint.
 */
import { requestAPI } from './request';
import { IAction, ICell, ICheckRequest, IHealthReport, IJobDetail, IJobSummary, ISchema } from './types';

/** A reply that is JSON but not the shape the endpoint promises (an older or foreign server). */
export class ReplyShapeError extends Error {
  constructor(request: string, expected: string) {
    super(`${request} answered without ${expected}: is the jupyter_tune server extension up to date?`);
    this.name = 'ReplyShapeError';
  }
}

function jobPath(jobId: string): string {
  return `jobs/${encodeURIComponent(jobId)}`;
}

/** The reply's array field `key`; a reply without one is a `ReplyShapeError`. */
function arrayField<T>(reply: unknown, key: string, request: string): T[] {
  const value = (reply as Record<string, unknown> | null)?.[key];
  if (!Array.isArray(value)) {
    throw new ReplyShapeError(request, `a "${key}" list`);
  }
  return value as T[];
}

/** GET jobs: every job's summary, newest first (the store's order). */
export async function listJobs(): Promise<IJobSummary[]> {
  return arrayField<IJobSummary>(await requestAPI<unknown>('jobs'), 'jobs', 'GET /jupyter-tune/jobs');
}

/** GET jobs/<id>: job.json and the last logged step's metrics. */
export async function getJob(jobId: string): Promise<IJobDetail> {
  return requestAPI<IJobDetail>(jobPath(jobId));
}

/** POST jobs/<id>:cancel: stop a job (it keeps its last checkpoint); returns its new summary. */
export async function cancelJob(jobId: string): Promise<IJobSummary> {
  return requestAPI<IJobSummary>(`${jobPath(jobId)}:cancel`, { method: 'POST' });
}

/** DELETE jobs/<id>: the job and its files (a running job is cancelled first). */
export async function deleteJob(jobId: string): Promise<void> {
  await requestAPI<unknown>(jobPath(jobId), { method: 'DELETE' });
}

/** GET templates: the panel's actions (buttons and the values each one takes). */
export async function getTemplates(): Promise<IAction[]> {
  return arrayField<IAction>(await requestAPI<unknown>('templates'), 'actions', 'GET /jupyter-tune/templates');
}

/** POST cells: an action's notebook cells, rendered by the server from `params`. */
export async function makeCells(action: string, params: Record<string, unknown>): Promise<ICell[]> {
  const reply = await requestAPI<unknown>('cells', {
    method: 'POST',
    body: JSON.stringify({ action, params })
  });
  return arrayField<ICell>(reply, 'cells', 'POST /jupyter-tune/cells');
}

/** GET schema: the tuning and action parameters and the job states. */
export async function getSchema(): Promise<ISchema> {
  const reply = await requestAPI<ISchema>('schema');
  arrayField(reply, 'parameters', 'GET /jupyter-tune/schema');
  if (typeof reply.states !== 'object' || reply.states === null) {
    throw new ReplyShapeError('GET /jupyter-tune/schema', 'the job "states"');
  }
  return { ...reply, action_parameters: reply.action_parameters ?? [], entry_points: reply.entry_points ?? {} };
}

/** POST check-dataset: a data file's health report (duplicates, leakage, conflicts, labels); no job. */
export async function checkDataset(request: ICheckRequest): Promise<IHealthReport> {
  const reply = await requestAPI<IHealthReport>('check-dataset', { method: 'POST', body: JSON.stringify(request) });
  arrayField(reply, 'findings', 'POST /jupyter-tune/check-dataset');
  return reply;
}

/** The API as one object, so the model can be given a fake in tests. */
export interface ITuneAPI {
  listJobs: typeof listJobs;
  getJob: typeof getJob;
  cancelJob: typeof cancelJob;
  deleteJob: typeof deleteJob;
  getTemplates: typeof getTemplates;
  makeCells: typeof makeCells;
  getSchema: typeof getSchema;
  checkDataset: typeof checkDataset;
}

export const tuneAPI: ITuneAPI = {
  listJobs,
  getJob,
  cancelJob,
  deleteJob,
  getTemplates,
  makeCells,
  getSchema,
  checkDataset
};
