/** JSON shapes of the /jupyter-tune/ REST API (see jupyter_tune/server/routes.py). Written by hand;
 * tests/package/test_panel_types.py checks their fields against what the Python side sends. */

export interface IParameter {
  name: string;
  label: string;
  type: 'bool' | 'int' | 'float' | 'str' | 'list[str]' | 'list[dict]' | 'dict' | 'any';
  nullable: boolean;
  default: unknown;
  help: string;
  group: string; // 'basic' is the main form; others: 'advanced', 'distributed', 'fast path', ...
  choices: unknown[] | null;
  minimum: number | null;
  maximum: number | null;
  /** The value lies strictly between minimum and maximum (params.field_problems' rule). */
  exclusive: boolean;
  kind: string | null;
}

/** Job state names and their sets, from jobs/states.py (never spelled out here). */
export interface IJobStates {
  all: string[];
  active: string[];
  final: string[];
  cancellable: string[];
  succeeded: string;
}

export interface ISchema {
  parameters: IParameter[];
  /** The panel's other values (job_id, dataset, prompt, max_output_tokens, dest, format, job_ids). */
  action_parameters: IParameter[];
  /** Every gated Python entry point's declared arguments (params/arguments.py), checked the same way. */
  entry_points: Record<string, IParameter[]>;
  recommended_learning_rate: number;
  /** The rate learning_rate_multiplier scales, per method (lora, qlora, full, dpo, grpo; params.py). */
  recommended_learning_rates: Record<string, number>;
  states: IJobStates;
}

export interface IAction {
  id: string;
  label: string;
  description: string;
  params: string[];
  button: boolean;
  defaults: Record<string, unknown>;
  /** job_id: 'optional', 'required', 'latest' (the server takes the newest succeeded job) or 'none'. */
  job: 'optional' | 'required' | 'latest' | 'none';
  /** The parameters that name the rows the action runs on (first given wins); one of them is required,
   * never the training data (cells/render.py refuses the action without one). Empty: no rows. */
  data: string[];
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
  /** The end-of-job evaluation's one line, e.g. "macro F1 0.29 -> 0.84, baseline 0.79". */
  headline?: string | null;
  /** The step whose checkpoint became the job's adapter (select_best), or null. */
  chosen_checkpoint?: number | null;
  /** Which weights are the job's model and why, e.g. "Stopped early at step 104; model = checkpoint 65 ...". */
  kept?: string | null;
  error: { message?: string } | string | null;
  /** The job's folder holds weights to load (an adapter, a model or a checkpoint): a cancelled job's Test. */
  has_checkpoint?: boolean;
  /** The job's files cannot be read; error says why and that it can still be deleted. */
  unreadable?: boolean;
}

/** GET jobs/<id>: job.json with the last logged step's metrics. */
export interface IJobDetail extends IJobSummary {
  latest_metrics: Record<string, unknown> | null;
  [key: string]: unknown;
}

export interface ICell {
  cell_type: 'code' | 'markdown';
  source: string;
}

/** One finding of POST check-dataset (jupyter_tune/data/health.py Finding). */
export interface IHealthFinding {
  /** overlap (leakage), conflict, duplicate, near_duplicate, label_imbalance or label_one_split. */
  kind: string;
  severity: 'warning' | 'info';
  split: string;
  /** split -> 1-based line (or row) numbers in that split's file. */
  lines: Record<string, number[]>;
  labels: string[];
  message: string;
  match: 'exact' | 'near' | null;
  similarity: number | null;
}

/** POST check-dataset: a dataset's health before anything trains (data/health.py HealthReport.to_json). */
export interface IHealthReport {
  findings: IHealthFinding[];
  /** Findings per kind, before the list is cut. */
  counts: Record<string, number>;
  /** Rows checked per split (train, validation). */
  rows: Record<string, number>;
  /** Labels per split and imbalance_ratio; null when the outputs are not labels. */
  labels: Record<string, unknown> | null;
  /** split -> the file, as the file browser names it. */
  sources: Record<string, string>;
  units: Record<string, string>;
  threshold: number;
  seconds: number;
}

/** What POST check-dataset checks: files relative to the server's root (as the file browser names them). */
export interface ICheckRequest {
  path: string;
  validation_path?: string | null;
  prompt_template?: string | null;
}
