/** A plain-text table: left-aligned columns, a header and a rule. */
export function formatTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
): string {
  const widths = columnWidths(header, rows);
  return [
    formatRow(header, widths),
    formatRow(
      widths.map((w) => "-".repeat(w)),
      widths,
    ),
    ...rows.map((r) => formatRow(r, widths)),
  ].join("\n");
}

/** The width of each column: its widest cell or header. */
export function columnWidths(
  header: readonly string[],
  rows: readonly (readonly string[])[],
): number[] {
  return header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
}

/** One line of a table with these column widths (a wider cell pushes the rest right). */
export function formatRow(cells: readonly string[], widths: readonly number[]): string {
  return cells
    .map((c, i) => c.padEnd(widths[i] ?? 0))
    .join("  ")
    .trimEnd();
}
