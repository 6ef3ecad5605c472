import type * as vscode from 'vscode';
import type * as W from '../../protocol/webview';
import * as P from '../../protocol/protocol';
import { buildDatasetView, releaseDatasetCache, samplePatches, SAMPLE_SIZE, type DatasetSources } from '../../core/views/dataset';
import { IdcPanel, type PanelHandlers, type PanelHost } from './panel';

/**
 * Dataset panel: class balance per split, the patient table, the leakage check and a random patch
 * grid, from manifest.csv, split.json and organize-report.json (read in this process: no TF.js).
 * Reloads when organize or split finishes.
 */
export class DatasetPanel extends IdcPanel<'dataset'> {
  protected override readonly reloadAfter: readonly P.JobKind[] = ['organize', 'split', 'synth'];

  constructor(panel: vscode.WebviewPanel, host: PanelHost, state: W.PanelState, info: P.WorkspaceInfo) {
    super('dataset', panel, host, state, info);
    this.onDidDispose(() => releaseDatasetCache());
  }

  private sources(): DatasetSources {
    // Paths from the output folder, not from info.manifest/info.split: those are absent until the
    // files exist, and the panel outlives the job that writes them.
    return { folder: this.info.folder, archive: this.info.archive, outputDir: this.info.outputDir };
  }

  protected handlers(): PanelHandlers<'dataset'> {
    return {
      load: async () => {
        const view = await buildDatasetView(this.sources(), { count: SAMPLE_SIZE });
        if (this.info.configProblems?.length) view.problems.unshift(`idc.config.json cannot be used (defaults apply): ${this.info.configProblems.join('; ')}`);
        return view;
      },
      sample: ({ count, seed, split }) => samplePatches(this.sources(), { count, seed, split }),
    };
  }
}
