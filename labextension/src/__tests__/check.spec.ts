/** check.ts: a field's text and an action's typed values against their schema declarations. */
import { checkValue, parseText, showValue } from '../check';
import { IParameter } from '../types';

function param(type: IParameter['type'], extra: Partial<IParameter> = {}): IParameter {
  return {
    name: 'p',
    label: 'P',
    type,
    nullable: false,
    default: null,
    help: '',
    group: 'basic',
    choices: null,
    minimum: null,
    maximum: null,
    exclusive: false,
    kind: null,
    ...extra
  };
}

describe('parseText', () => {
  const epochs = param('int', { nullable: true, minimum: 1, maximum: 100 });

  it('reads whole numbers within their bounds', () => {
    expect(parseText(epochs, ' 3 ')).toEqual({ value: 3 });
    expect(parseText(epochs, '1.5')).toEqual({ error: '1.5 is not a whole number' });
    expect(parseText(epochs, '0')).toEqual({ error: '0 is below the minimum 1' });
    expect(parseText(epochs, '101')).toEqual({ error: '101 is above the maximum 100' });
    expect(parseText(epochs, '')).toEqual({ value: null }); // nullable: auto
  });

  it('reads floats, and an empty required field as its default', () => {
    const lr = param('float', { default: 1.0, minimum: 0.001 });
    expect(parseText(lr, '2e-1')).toEqual({ value: 0.2 });
    expect(parseText(lr, 'abc')).toEqual({ error: 'abc is not a number' });
    expect(parseText(lr, '')).toEqual({ value: 1.0 });
  });

  it("gives a choice's own value: 8, not '8'; null for none", () => {
    const size = param('int', { choices: [4, 8] });
    expect(parseText(size, '8')).toEqual({ value: 8 });
    expect(parseText(size, '5')).toEqual({ error: 'choose one of the listed values' });
    expect(parseText(param('str', { choices: [null, '4bit'] }), '')).toEqual({ value: null });
  });
});

describe('lists', () => {
  it('reads a list of text as JSON or comma-separated, and shows it the second way', () => {
    const modules = param('list[str]', { nullable: true });
    expect(parseText(modules, 'q_proj, v_proj')).toEqual({ value: ['q_proj', 'v_proj'] });
    expect(parseText(modules, '["q_proj"]')).toEqual({ value: ['q_proj'] });
    expect(parseText(modules, '[1]')).toEqual({ error: 'expected a list of text, e.g. ["q_proj", "v_proj"]' });
    expect(parseText(modules, '')).toEqual({ value: null });
    expect(showValue(modules, ['q_proj', 'v_proj'])).toBe('q_proj, v_proj');
  });

  it('reads grader specs as JSON objects, one alone as a list of one', () => {
    const graders = param('list[dict]', { nullable: true });
    const spec = { kind: 'label_match', choices: ['A', 'B'] };
    expect(parseText(graders, JSON.stringify([spec]))).toEqual({ value: [spec] });
    expect(parseText(graders, JSON.stringify(spec))).toEqual({ value: [spec] });
    expect(parseText(graders, '[1, 2]')).toEqual({
      error: 'expected a JSON list of objects, e.g. [{"kind": "label_match"}]'
    });
    const bad = parseText(graders, '[{kind: 1}]');
    expect('error' in bad && bad.error.startsWith('not valid JSON')).toBe(true);
    expect(showValue(graders, [spec])).toBe(JSON.stringify([spec]));
  });
});

describe('checkValue', () => {
  it('checks typed values as the server does', () => {
    expect(checkValue(param('str', { nullable: true }), null)).toBeNull();
    expect(checkValue(param('str'), null)).toBe('a value is needed');
    expect(checkValue(param('str'), 7)).toBe('must be text');
    expect(checkValue(param('list[str]'), ['a', 'b'])).toBeNull();
    expect(checkValue(param('list[str]'), ['a', 1])).toBe('must be a list of text');
    expect(checkValue(param('int', { minimum: 1, maximum: 32768 }), 40000)).toBe('40000 is above the maximum 32768');
    // jt.split's test_size: strictly between 0 and 1, as the server says
    const share = param('float', { minimum: 0, maximum: 1, exclusive: true });
    expect(checkValue(share, 1)).toBe('1 must lie strictly between 0 and 1');
    expect(checkValue(share, 0.4)).toBeNull();
    expect(checkValue(param('int'), 2.5)).toBe('2.5 is not a whole number');
    expect(checkValue(param('str', { choices: ['merged', 'gguf'] }), 'zip')).toBe('choose one of merged, gguf');
  });
});

describe('showValue', () => {
  it('shows a whole float as 1.0 and null as empty', () => {
    expect(showValue(param('float'), 1)).toBe('1.0');
    expect(showValue(param('int'), null)).toBe('');
  });
});
