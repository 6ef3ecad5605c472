import { writeFileAtomic } from '../fsutil';
import { renderReport, type ReportInput } from './render';

export { renderReport, SECTIONS, type ReportInput, type SectionId } from './render';
export { escapeHtml } from './html';

/** Renders the report and writes it atomically (readers never see half a file). */
export async function writeReport(file: string, input: ReportInput): Promise<void> {
  await writeFileAtomic(file, renderReport(input));
}
