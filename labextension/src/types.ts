/** JSON shapes of the /jupyter-tune/ REST API (see jupyter_tune/server/routes.py). */

export interface IParameter {
  name: string;
  type: 'bool' | 'int' | 'float' | 'str' | 'list[str]' | 'any';
  nullable: boolean;
  default: unknown;
  help: string;
  group: 'basic' | 'advanced';
  choices: unknown[] | null;
  minimum: number | null;
  maximum: number | null;
  kind: string | null;
}

export interface ISchema {
  parameters: IParameter[];
  recommended_learning_rate: number;
}

export interface IAction {
  id: string;
  label: string;
  description: string;
  params: string[];
  button: boolean;
  defaults: Record<string, unknown>;
}

export interface IJobSummary {
  id: string;
  display_name: string | null;
  state: string;
  base_model: string | null;
  create_time: string | null;
  start_time: string | null;
  end_time: string | null;
  progress: { step?: number; total_steps?: number | null; epoch?: number };
  queue_position?: number | null; // while JOB_STATE_QUEUED: 1 starts next
  error: { message?: string } | string | null;
}

export interface ICell {
  cell_type: 'code' | 'markdown';
  source: string;
}

export const ACTIVE_STATES = new Set([
  'JOB_STATE_QUEUED',
  'JOB_STATE_PENDING',
  'JOB_STATE_RUNNING',
  'JOB_STATE_CANCELLING'
]);
export const SUCCEEDED = 'JOB_STATE_SUCCEEDED';
