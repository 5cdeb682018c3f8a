// The management API's rules for names and federated credentials, checked as the user
// types. The API checks again on submit, and its own message is what the form shows then.

const MAX_FIELD = 600;
const MAX_ISSUER = 600;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** Identity names: 3-128 letters, digits, '-' or '_', starting with a letter or digit. */
export function identityName(v) {
  if (!v) return "Required.";
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{2,127}$/.test(v)) {
    return `Identity name '${v}' is invalid: use 3-128 letters, digits, '-' or '_', starting with a letter or digit.`;
  }
  return null;
}

/** Resource group names: 1-90 letters, digits, '-', '_', '.', '(' or ')', not ending in '.'. */
export function groupName(v) {
  if (!v) return "Required.";
  if (!/^[-\w.()]{1,90}$/u.test(v) || v.endsWith(".")) {
    return `Resource group name '${v}' is invalid: use 1-90 letters, digits, '-', '_', '.', '(' or ')', not ending in '.'.`;
  }
  return null;
}

/** Federated credential names: ^[a-zA-Z0-9][a-zA-Z0-9-_]{2,119}$. */
export function credentialName(v) {
  if (!v) return "Required.";
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_-]{2,119}$/.test(v)) {
    return `Federated identity credential name '${v}' is invalid: it must match ^[a-zA-Z0-9][a-zA-Z0-9-_]{2,119}$ (3-120 characters, starting with a letter or digit).`;
  }
  return null;
}

function text(v, field) {
  if (!v || !v.trim()) return `The '${field}' property must not be empty.`;
  if (CONTROL.test(v)) return `The '${field}' property must not contain control characters.`;
  if ([...v].length > MAX_FIELD) return `The '${field}' property is longer than ${MAX_FIELD} characters.`;
  return null;
}

/** An https URL with a host; no user info, query, fragment, spaces or control characters. */
export function issuer(v) {
  const t = text(v, "issuer");
  if (t) return t;
  let why = null;
  if (v.length > MAX_ISSUER) why = "it is longer than 600 characters";
  else if (/[\s\u0000-\u001f\u007f-\u009f]/.test(v)) why = "it contains spaces or control characters";
  else if (!v.startsWith("https://")) why = "it must be an https URL";
  else {
    const rest = v.slice("https://".length);
    const host = rest.split(/[/?#]/)[0];
    if (!host) why = "it has no host";
    else if (host.includes("@")) why = "it carries user information";
    else if (rest.includes("?")) why = "it has a query string";
    else if (rest.includes("#")) why = "it has a fragment";
  }
  return why ? `The issuer '${v}' is invalid: ${why}. Use the issuer URL exactly as the platform's tokens carry it in 'iss' (https, a host, an optional path).` : null;
}

/** Exactly one non-empty audience. */
export function audience(v) {
  return text(v, "audiences");
}

/** Either a subject or an expression, not both, not neither. */
export function subjectOrExpression(subject, expression) {
  const s = subject && subject.trim();
  const e = expression && expression.trim();
  if (s && e) return ["Set either 'subject' or 'claimsMatchingExpression', not both.", null];
  if (!s && !e) return ["The 'subject' property is required (or a 'claimsMatchingExpression').", null];
  if (s) return [text(subject, "subject"), null];
  return [null, text(expression, "claimsMatchingExpression.value")];
}

/** The PUT body of a credential, as the form sends it (an empty subject is left out, so
 *  the API and these rules agree that one of subject and expression is required). */
export function credentialBody({ issuer: iss, subject, expression, audience: aud }) {
  const properties = { issuer: iss.trim(), audiences: [aud.trim()] };
  if (expression && expression.trim()) properties.claimsMatchingExpression = { value: expression.trim(), languageVersion: 1 };
  if (subject && subject.trim()) properties.subject = subject.trim();
  return { properties };
}

/** Every problem the rules find with a credential form, first one first (the API's order). */
export function credentialProblems({ name, issuer: iss, subject, expression, audience: aud }) {
  const [s, e] = subjectOrExpression(subject, expression);
  return [credentialName(name), issuer(iss), audience(aud), s, e].filter(Boolean);
}
