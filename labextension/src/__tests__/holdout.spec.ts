/** holdout.ts: the Tune form's hold-out box (shown while no validation file is given) and its value. */
import { CONFLICT_CHOICES, EvaluationData, HOLDOUT_SHARE, HoldoutChoice, IFormFields, holdoutValue } from '../holdout';

/** A form of plain inputs, enough for the box: the fields it reads and where it goes. */
function fakeForm(): IFormFields & { set(name: string, text: string): void } {
  const node = document.createElement('form');
  const inputs = new Map<string, HTMLInputElement>();
  for (const name of ['train_dataset', 'validation_dataset', 'method']) {
    const row = document.createElement('div');
    row.dataset.field = name;
    const input = document.createElement('input');
    row.appendChild(input);
    node.appendChild(row);
    inputs.set(name, input);
  }
  inputs.get('method')!.value = 'lora';
  return {
    node,
    text: name => inputs.get(name)?.value ?? '',
    insertAfter: (name, child) => node.querySelector(`[data-field="${name}"]`)!.after(child),
    set(name, text) {
      inputs.get(name)!.value = text;
      inputs.get(name)!.dispatchEvent(new Event('input', { bubbles: true }));
    }
  };
}

describe('holdoutValue', () => {
  it('is the share only with one file, the box checked and rows that jt.split can split', () => {
    expect(holdoutValue('', 'lora', true)).toBe(HOLDOUT_SHARE);
    expect(holdoutValue('  ', 'full', true)).toBe(0.1);
    expect(holdoutValue('val.jsonl', 'lora', true)).toBeNull();
    expect(holdoutValue('', 'lora', false)).toBeNull();
    expect(holdoutValue('', 'dpo', true)).toBeNull(); // preference pairs: the server refuses holdout
    expect(holdoutValue('', 'grpo', true)).toBeNull(); // prompts scored by graders: refused too
  });
});

describe('HoldoutChoice', () => {
  it('sits below the validation field, checked, and sends 0.1 while that field is empty', () => {
    const form = fakeForm();
    const choice = new HoldoutChoice(form);
    expect(choice.node.previousElementSibling?.getAttribute('data-field')).toBe('validation_dataset');
    expect(choice.node.hidden).toBe(false);
    expect(choice.node.querySelector('input')!.checked).toBe(true);
    expect(choice.node.textContent).toContain('Hold out 10 % of the training rows for validation');
    expect(choice.value()).toBe(0.1);
  });

  it('hides while a validation file is given and comes back when it is cleared', () => {
    const form = fakeForm();
    const choice = new HoldoutChoice(form);
    form.set('validation_dataset', 'data/eval.jsonl');
    expect(choice.node.hidden).toBe(true);
    expect(choice.value()).toBeNull();
    form.set('validation_dataset', '');
    expect(choice.node.hidden).toBe(false);
    expect(choice.value()).toBe(0.1);
  });

  it('sends nothing once unchecked, or for DPO and GRPO', () => {
    const form = fakeForm();
    const choice = new HoldoutChoice(form);
    const box = choice.node.querySelector('input')!;
    box.checked = false;
    box.dispatchEvent(new Event('change', { bubbles: true }));
    expect(choice.value()).toBeNull();
    box.checked = true;
    form.set('method', 'dpo');
    expect(choice.node.hidden).toBe(true);
    expect(choice.value()).toBeNull();
    form.set('method', 'grpo');
    expect(choice.node.hidden).toBe(true);
    expect(choice.value()).toBeNull();
    form.set('method', 'qlora');
    expect(choice.node.hidden).toBe(false);
    expect(choice.value()).toBe(0.1);
  });
});

describe('the hold-out conflicts choice', () => {
  it("offers jt.split's three conflicts, 'report' first", () => {
    const choice = new HoldoutChoice(fakeForm());
    const select = choice.node.querySelector('select')!;
    expect([...select.options].map(o => o.value)).toEqual(['report', 'drop', 'merge']);
    expect(CONFLICT_CHOICES.map(c => c[0])).toEqual(['report', 'drop', 'merge']);
    expect(choice.conflictsValue()).toBe('report');
    select.value = 'drop';
    expect(choice.conflictsValue()).toBe('drop');
  });
});

describe('EvaluationData', () => {
  it('sits below the validation field and gives the path as typed, trimmed', () => {
    const form = fakeForm();
    const data = new EvaluationData(form);
    expect(form.node.querySelector('[data-field="validation_dataset"]')!.nextElementSibling).toBe(data.node);
    expect(data.value()).toBe('');
    data.node.querySelector('input')!.value = ' data/test.jsonl ';
    expect(data.value()).toBe('data/test.jsonl');
  });
});
