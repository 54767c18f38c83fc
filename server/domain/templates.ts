// Secret references (`veil://NAME[/FIELD]`) and template expressions (`{{ secrets.NAME[.FIELD] }}`): parsing and rendering, no I/O.
import { fail } from "../errors.js";

/** One secret a template or reference names; `field` selects one field of a key/value secret. */
export interface SecretRef {
  name: string;
  field?: string;
}

/** A parsed template: literal text and references, in order. */
export type TemplatePart = { kind: "text"; text: string } | { kind: "ref"; ref: SecretRef };

const NAME = "[A-Za-z][A-Za-z0-9_]{0,63}";
const FIELD = "[A-Za-z0-9_.-]{1,64}";
const REFERENCE = new RegExp(`^veil://(${NAME})(?:/(${FIELD}))?$`);
const EXPRESSION = new RegExp(`^\\s*secrets\\.(${NAME})(?:\\.(${FIELD}))?\\s*$`);
const REFERENCE_RULE = "a reference must be veil://NAME or veil://NAME/FIELD (NAME a secret name, FIELD one of its field names)";
const EXPRESSION_RULE = "an expression must be {{ secrets.NAME }} or {{ secrets.NAME.FIELD }}";

/** Line and column (both from 1) of an offset, for error messages people can find in their file. */
function position(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  const column = offset - before.lastIndexOf("\n");
  return `line ${line}, column ${column}`;
}

/**
 * Parses text holding `{{ secrets.NAME }}` / `{{ secrets.NAME.FIELD }}` expressions.
 * Anything else between `{{` and `}}`, or a `{{` never closed, is INVALID_ARGUMENT naming
 * `where` and the position, so a typo never reaches a command as literal text.
 */
export function parseTemplate(text: string, where: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let from = 0;
  for (;;) {
    const open = text.indexOf("{{", from);
    if (open === -1) break;
    const close = text.indexOf("}}", open + 2);
    if (close === -1) throw fail.invalid(`${where}: ${position(text, open)}: "{{" is never closed by "}}"; ${EXPRESSION_RULE}`);
    const match = EXPRESSION.exec(text.slice(open + 2, close));
    if (match === null) throw fail.invalid(`${where}: ${position(text, open)}: unknown expression; ${EXPRESSION_RULE}`);
    if (open > from) parts.push({ kind: "text", text: text.slice(from, open) });
    parts.push({ kind: "ref", ref: refOf(match[1]!, match[2]) });
    from = close + 2;
  }
  if (from < text.length) parts.push({ kind: "text", text: text.slice(from) });
  return parts;
}

/** Whether a value is meant as a whole reference (it starts with the scheme). */
export function isReference(value: string): boolean {
  return value.startsWith("veil://");
}

/** Parses `veil://NAME` or `veil://NAME/FIELD`; anything else starting with `veil://` is INVALID_ARGUMENT. */
export function parseReference(value: string, where: string): SecretRef {
  const match = REFERENCE.exec(value);
  if (match === null) throw fail.invalid(`${where}: ${REFERENCE_RULE}`);
  return refOf(match[1]!, match[2]);
}

/** An env value: a whole reference, or text with expressions. */
export function parseEnvValue(value: string, where: string): TemplatePart[] {
  return isReference(value) ? [{ kind: "ref", ref: parseReference(value, where) }] : parseTemplate(value, where);
}

/** The secret names a template refers to, each once, in order of first use. */
export function referencedNames(parts: readonly TemplatePart[]): string[] {
  const names = new Set<string>();
  for (const part of parts) if (part.kind === "ref") names.add(part.ref.name);
  return [...names];
}

/** Whether a template is plain text (nothing to resolve). */
export function isLiteral(parts: readonly TemplatePart[]): boolean {
  return parts.every((p) => p.kind === "text");
}

/** A resolved secret as templates see it: a single value or named fields. */
export type TemplateValue = { kind: "text"; text: string } | { kind: "fields"; fields: Record<string, string> };

/**
 * Renders parts with resolved values. A field of a single value, a missing field, or a whole
 * key/value secret where one string is needed is INVALID_ARGUMENT naming the secret and the
 * field names it has (never a value).
 */
export function renderTemplate(parts: readonly TemplatePart[], valueFor: (name: string) => TemplateValue, where: string): string {
  let out = "";
  for (const part of parts) out += part.kind === "text" ? part.text : pick(part.ref, valueFor(part.ref.name), where);
  return out;
}

function pick(ref: SecretRef, value: TemplateValue, where: string): string {
  if (value.kind === "text") {
    if (ref.field !== undefined) throw fail.invalid(`${where}: ${ref.name} is a single value; it has no field ${ref.field}`);
    return value.text;
  }
  const names = Object.keys(value.fields).sort().join(", ");
  if (ref.field === undefined) throw fail.invalid(`${where}: ${ref.name} has fields (${names}); name one, as ${ref.name}.FIELD or veil://${ref.name}/FIELD`);
  const field = value.fields[ref.field];
  if (field === undefined) throw fail.invalid(`${where}: ${ref.name} has no field ${ref.field} (field names are case-sensitive; it has ${names})`);
  return field;
}

function refOf(name: string, field: string | undefined): SecretRef {
  return field === undefined ? { name } : { name, field };
}
