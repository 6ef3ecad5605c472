/**
 * Every command the extension registers, declared once: commands.ts registers a handler for each
 * (its table is typed by this list, so one missing does not compile) and test/contributions.test.ts
 * checks package.json against it. No `vscode` import, so the test can read it.
 */
export const COMMAND_IDS = [
  'idc.organize', 'idc.split', 'idc.train', 'idc.resume', 'idc.crossValidate', 'idc.stopJob', 'idc.evaluate', 'idc.exportReport',
  'idc.synth', 'idc.predict', 'idc.openConfig', 'idc.selectBackend', 'idc.checkGpu', 'idc.showDataset', 'idc.showTraining',
  'idc.showEvaluation', 'idc.showFalseNegatives', 'idc.showSlideMap', 'idc.showLog', 'idc.restartServer',
  // Explorer and editor context menus
  'idc.organizeFolder', 'idc.evaluateArchive', 'idc.evaluateModelFile', 'idc.predictWithModel', 'idc.validateConfig',
  // Side bar
  'idc.chooseArchive', 'idc.revealRun', 'idc.revealInExplorer', 'idc.copyRunId', 'idc.deleteRun', 'idc.refreshSidebar', 'idc.getStarted',
] as const;

export type CommandId = (typeof COMMAND_IDS)[number];

/**
 * Commands that start a process: a job (the job process runs idc.config.json's engine.python for
 * the torch engine) or a probe that runs that interpreter. Refused in Restricted Mode, and their
 * menu entries need isWorkspaceTrusted.
 */
export const NEEDS_TRUST: ReadonlySet<CommandId> = new Set<CommandId>([
  'idc.organize', 'idc.split', 'idc.train', 'idc.resume', 'idc.crossValidate', 'idc.evaluate', 'idc.exportReport', 'idc.synth',
  'idc.predict', 'idc.selectBackend', 'idc.checkGpu', 'idc.organizeFolder', 'idc.evaluateArchive', 'idc.evaluateModelFile', 'idc.predictWithModel',
]);

/** Commands that only make sense on something (a file, a tree item): hidden from the palette. */
export const NEEDS_ARGUMENT: ReadonlySet<CommandId> = new Set<CommandId>([
  'idc.organizeFolder', 'idc.evaluateArchive', 'idc.evaluateModelFile', 'idc.predictWithModel', 'idc.revealInExplorer', 'idc.copyRunId',
]);

/** The walkthrough, as VS Code names it: `<publisher>.<name>#<id>`. */
export const WALKTHROUGH_ID = 'idc-inspector.idc-inspector#idc.getStarted';

/** The message a command that needs trust shows in Restricted Mode. */
export function restrictedModeMessage(title: string): string {
  return `IDC: ${title} is disabled in Restricted Mode: jobs run the Python interpreter that idc.config.json's engine.python names, so only a trusted workspace may start them. Browsing the results works.`;
}
