/**
 * Values checked against GET schema's parameter declarations (type, choices, minimum, maximum), the
 * same declarations the server checks them against (params.field_problems), so a problem shows at its
 * field before any request. No DOM here: the model and the form both use it.
 */
import { IParameter } from './types';

/** A value typed as the schema says, or the problem with what was given. */
export type Parsed = { value: unknown } | { error: string };

const INTEGER = /^[+-]?\d+$/;

/** How a select shows a choice: '' for null (the "none" option). */
export function choiceKey(choice: unknown): string {
  return choice === null ? '' : String(choice);
}

/** A value as a text field shows it: empty for null, 1.0 (not 1) for a float. */
export function showValue(param: IParameter, value: unknown): string {
  if (value === null || value === undefined) {
    return '';
  }
  if (param.type === 'float' && typeof value === 'number' && Number.isInteger(value)) {
    return value.toFixed(1);
  }
  if (param.type === 'list[str]' && Array.isArray(value)) {
    return value.join(', ');
  }
  if (typeof value === 'object') {
    return JSON.stringify(value); // list[dict] (grader specs), any: JSON, as they are read back
  }
  return String(value);
}

function rangeProblem(param: IParameter, value: number): string | null {
  if (param.exclusive) {
    const below = param.minimum !== null && value <= param.minimum;
    const above = param.maximum !== null && value >= param.maximum;
    return below || above ? `${value} must lie strictly between ${param.minimum} and ${param.maximum}` : null;
  }
  if (param.minimum !== null && value < param.minimum) {
    return `${value} is below the minimum ${param.minimum}`;
  }
  if (param.maximum !== null && value > param.maximum) {
    return `${value} is above the maximum ${param.maximum}`;
  }
  return null;
}

/** What a form field's text (or a select's key) means: the schema's own value, or the problem. */
export function parseText(param: IParameter, text: string): Parsed {
  if (param.choices) {
    // the schema's own value (8, not "8"; null for "none")
    const choice = param.choices.find(c => choiceKey(c) === text);
    return choice !== undefined ? { value: choice } : { error: 'choose one of the listed values' };
  }
  const raw = text.trim();
  if (raw === '') {
    return param.nullable ? { value: null } : { value: param.default };
  }
  if (param.type === 'list[str]') {
    return parseList(raw);
  }
  if (param.type === 'list[dict]') {
    return parseObjects(raw);
  }
  if (param.type !== 'int' && param.type !== 'float') {
    return { value: raw };
  }
  if (param.type === 'int' && !INTEGER.test(raw)) {
    return { error: `${raw} is not a whole number` };
  }
  const value = Number(raw);
  if (!Number.isFinite(value)) {
    return { error: `${raw} is not a number` };
  }
  const problem = rangeProblem(param, value);
  return problem === null ? { value } : { error: problem };
}

/** A list of text: JSON (["q_proj", "v_proj"]) or comma-separated (q_proj, v_proj). */
function parseList(raw: string): Parsed {
  if (raw.startsWith('[')) {
    const parsed = parseJSON(raw);
    if ('error' in parsed) {
      return parsed;
    }
    const value = parsed.value;
    return Array.isArray(value) && value.every(v => typeof v === 'string')
      ? { value }
      : { error: 'expected a list of text, e.g. ["q_proj", "v_proj"]' };
  }
  return {
    value: raw
      .split(',')
      .map(v => v.trim())
      .filter(v => v !== '')
  };
}

/** A list of JSON objects (grader specs): [{"kind": "label_match"}]; one object alone is a list of one. */
function parseObjects(raw: string): Parsed {
  const parsed = parseJSON(raw);
  if ('error' in parsed) {
    return parsed;
  }
  const isObject = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
  const value = isObject(parsed.value) ? [parsed.value] : parsed.value;
  return Array.isArray(value) && value.every(isObject)
    ? { value }
    : { error: 'expected a JSON list of objects, e.g. [{"kind": "label_match"}]' };
}

function parseJSON(raw: string): Parsed {
  try {
    return { value: JSON.parse(raw) };
  } catch (e) {
    return { error: `not valid JSON: ${(e as Error).message}` };
  }
}

/** The problem with an already typed value (null: none), e.g. an action's job_id or job_ids. */
export function checkValue(param: IParameter, value: unknown): string | null {
  if (value === null || value === undefined) {
    return param.nullable ? null : 'a value is needed';
  }
  if (param.choices) {
    return param.choices.includes(value) ? null : `choose one of ${param.choices.map(String).join(', ')}`;
  }
  switch (param.type) {
    case 'bool':
      return typeof value === 'boolean' ? null : 'must be true or false';
    case 'str':
      return typeof value === 'string' ? null : 'must be text';
    case 'list[str]':
      return Array.isArray(value) && value.every(v => typeof v === 'string') ? null : 'must be a list of text';
    case 'list[dict]':
      return Array.isArray(value) && value.every(v => typeof v === 'object' && v !== null && !Array.isArray(v))
        ? null
        : 'must be a list of objects';
    case 'int':
    case 'float':
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        return 'must be a number';
      }
      if (param.type === 'int' && !Number.isInteger(value)) {
        return `${value} is not a whole number`;
      }
      return rangeProblem(param, value);
    default:
      return null; // 'any': the server checks it
  }
}
