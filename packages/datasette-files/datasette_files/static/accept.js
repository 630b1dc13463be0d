// Whether a file matches <input accept>-style rules: "image/*", "image/png"
// or ".pdf". The `file` column type checks the same rules on the server
// (column_type.py), so the browser refuses what the server would.

export function parseAccept(value) {
  const rules = Array.isArray(value) ? value : String(value || "").split(",");
  return rules.map((rule) => String(rule).trim().toLowerCase()).filter(Boolean);
}

export function acceptsFile(rules, contentType, filename) {
  if (!rules.length) return true;
  const type = (contentType || "").split(";")[0].trim().toLowerCase();
  const name = (filename || "").toLowerCase();
  return rules.some((rule) => {
    if (rule.startsWith(".")) return name.endsWith(rule);
    if (rule.endsWith("/*")) return type.startsWith(rule.slice(0, -1));
    return type === rule;
  });
}
