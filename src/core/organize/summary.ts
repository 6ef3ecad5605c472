import type { OrganizeReport } from './organize';

/** The report as a short text for terminals and logs; the JSON file has everything. */
export function formatOrganizeSummary(r: OrganizeReport, maxIssues = 12): string {
  const t = r.totals;
  const lines = [
    `  patients ${t.patients}, patches ${t.patches} (class 0: ${t.negatives}, class 1: ${t.positives}, ${t.patches ? ((100 * t.positives) / t.patches).toFixed(1) : 0}% positive)`,
    `  files seen ${t.files}; identical duplicates ignored ${t.duplicates}; skipped ${t.skipped}; suspicious ${t.suspicious} (edge patches ${t.edgePatches})`,
  ];
  for (const d of r.duplicates) lines.push(`  duplicate tree ${d.tree}/: ${d.files} identical copies`);
  const shown = r.issues.slice(0, maxIssues);
  for (const i of shown) lines.push(`  ${i.severity === 'skipped' ? 'skipped   ' : 'suspicious'} ${i.path}: ${i.reason}`);
  if (r.issues.length > shown.length) lines.push(`  … ${r.issues.length - shown.length} more in organize-report.json`);
  return lines.join('\n');
}
