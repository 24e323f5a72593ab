/** `md` with the section headed `title` (up to the next "## " heading) replaced by `section`, or `section` appended. */
export function replaceSection(md: string, title: string, section: string): string {
  const lines = md.split("\n");
  const start = lines.indexOf(title);
  const body = section.replace(/\n+$/, "").split("\n");
  if (start < 0) return [...lines, ...body, ""].join("\n");
  let end = lines.findIndex((l, i) => i > start && l.startsWith("## "));
  if (end < 0) end = lines.length;
  return [...lines.slice(0, start), ...body, "", ...lines.slice(end)].join("\n");
}
