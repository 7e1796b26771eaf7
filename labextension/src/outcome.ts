/**
 * A finished job's outcome in the job list: the end-of-job evaluation's headline ("macro F1 0.29 ->
 * 0.84, baseline 0.79") and which weights are its model (the server's ``kept`` line; older servers send
 * only the chosen checkpoint's step).
 */
import { el } from './dom';
import { IJobStates, IJobSummary } from './types';

/** The state of a job stopped by the user (jobs/states.py): its checkpoint is a model too. */
const CANCELLED = 'JOB_STATE_CANCELLED';

/** Whether a job has a model to Test and Export: it succeeded, or it was cancelled after saving weights
 * (the server's `has_checkpoint`; jt.load_model then loads what it saved when it stopped). */
export function offersModel(job: IJobSummary, states: Pick<IJobStates, 'succeeded'>): boolean {
  return job.state === states.succeeded || (job.state === CANCELLED && job.has_checkpoint === true);
}

/** The words evaluation/job_report.py's headline uses when a TF-IDF baseline matched the tuned model. */
const DID_NOT_PAY = 'did not pay';

/** The lines to show under a job's name (none when the summary carries neither). */
export function outcomeLines(job: IJobSummary): HTMLDivElement[] {
  const lines: HTMLDivElement[] = [];
  if (job.headline) {
    const line = el('div', 'jp-TuningPanel-headline', job.headline);
    line.title = 'Base vs tuned model (and a TF-IDF baseline) on the validation set, measured after training';
    line.classList.toggle('jp-mod-warn', job.headline.includes(DID_NOT_PAY));
    lines.push(line);
  }
  if (job.kept) {
    // jobs/kept.py: which weights the model is ("Stopped early at step 104; model = checkpoint 65 ...")
    const line = el('div', 'jp-TuningPanel-chosen', job.kept);
    line.title = "The weights that are the job's model, and why";
    lines.push(line);
  } else if (typeof job.chosen_checkpoint === 'number') {
    const line = el('div', 'jp-TuningPanel-chosen', `checkpoint ${job.chosen_checkpoint} chosen`);
    line.title = "The job's adapter is this step's checkpoint, the best by its select_best metric";
    lines.push(line);
  }
  return lines;
}
