/** outcome.ts: a finished job's headline and chosen checkpoint in the job list. */
import { offersModel, outcomeLines } from '../outcome';
import { IJobSummary } from '../types';

function job(extra: Partial<IJobSummary>): IJobSummary {
  return {
    id: 'j1',
    display_name: null,
    state: 'JOB_STATE_SUCCEEDED',
    base_model: 'm',
    create_time: null,
    start_time: null,
    end_time: null,
    progress: {},
    error: null,
    ...extra
  };
}

describe('outcomeLines', () => {
  it('shows the headline muted, and the chosen checkpoint', () => {
    const lines = outcomeLines(job({ headline: 'macro F1 0.29 -> 0.84, baseline 0.79', chosen_checkpoint: 40 }));
    expect(lines.map(l => l.textContent)).toEqual(['macro F1 0.29 -> 0.84, baseline 0.79', 'checkpoint 40 chosen']);
    expect(lines[0].className).toBe('jp-TuningPanel-headline');
    expect(lines[1].className).toBe('jp-TuningPanel-chosen');
  });

  it('states which weights are the model, in place of the bare step', () => {
    const kept = 'Stopped early at step 104; model = checkpoint 65 (macro F1 0.81), the best evaluation';
    const lines = outcomeLines(job({ kept, chosen_checkpoint: 65 }));
    expect(lines.map(l => l.textContent)).toEqual([kept]);
  });

  it('warns when tuning did not pay', () => {
    const [line] = outcomeLines(job({ headline: 'macro F1 0.29 -> 0.70, baseline 0.79 (tuning did not pay)' }));
    expect(line.classList.contains('jp-mod-warn')).toBe(true);
  });

  it('shows nothing for a summary without them (older servers, running jobs)', () => {
    expect(outcomeLines(job({}))).toEqual([]);
    expect(outcomeLines(job({ headline: null, chosen_checkpoint: null }))).toEqual([]);
    expect(outcomeLines(job({ chosen_checkpoint: 0 })).map(l => l.textContent)).toEqual(['checkpoint 0 chosen']);
  });

  it('puts the headline in as text, never HTML', () => {
    const [line] = outcomeLines(job({ headline: '<img src=x onerror=alert(1)>' }));
    expect(line.children.length).toBe(0);
  });
});

describe('offersModel', () => {
  const states = { succeeded: 'JOB_STATE_SUCCEEDED' };
  it('is true for a succeeded job and a cancelled one that saved weights', () => {
    expect(offersModel(job({}), states)).toBe(true);
    expect(offersModel(job({ state: 'JOB_STATE_CANCELLED', has_checkpoint: true }), states)).toBe(true);
  });

  it('is false for a cancelled job with nothing saved, a running or a failed one', () => {
    expect(offersModel(job({ state: 'JOB_STATE_CANCELLED', has_checkpoint: false }), states)).toBe(false);
    expect(offersModel(job({ state: 'JOB_STATE_CANCELLED' }), states)).toBe(false); // an older server
    expect(offersModel(job({ state: 'JOB_STATE_RUNNING', has_checkpoint: true }), states)).toBe(false);
    expect(offersModel(job({ state: 'JOB_STATE_FAILED', has_checkpoint: true }), states)).toBe(false);
  });
});
