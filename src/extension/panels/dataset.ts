import type * as vscode from 'vscode';
import type * as W from '../../protocol/webview';
import * as P from '../../protocol/protocol';
import { buildDatasetView, releaseDatasetCache, samplePatches, SAMPLE_SIZE, type DatasetSources } from '../../core/views/dataset';
import { IdcPanel, type PanelHandlers, type PanelHost } from './panel';

/**
 * Dataset panel: class balance per split, the patient table (with each slide's stain estimate once
 * stain normalization has run), the leakage check and a random patch grid, from manifest.csv,
 * split.json, organize-report.json and <cache>/<split>.stains.json (read in this process: no TF.js).
 * Reloads when organize or split finishes, and after training (which estimates stains).
 */
export class DatasetPanel extends IdcPanel<'dataset'> {
  protected override readonly reloadAfter: readonly P.JobKind[] = ['organize', 'split', 'synth', 'train', 'resume', 'evaluate'];

  constructor(panel: vscode.WebviewPanel, host: PanelHost, state: W.PanelState, info: P.WorkspaceInfo) {
    super('dataset', panel, host, state, info);
    this.onDidDispose(() => releaseDatasetCache());
  }

  private async sources(): Promise<DatasetSources> {
    // Paths from the output folder, not from info.manifest/info.split: those are absent until the
    // files exist, and the panel outlives the job that writes them.
    return { folder: this.info.folder, archive: this.info.archive, outputDir: this.info.outputDir, cacheDir: await this.cacheDir() };
  }

  protected handlers(): PanelHandlers<'dataset'> {
    return {
      load: async () => {
        const view = await buildDatasetView(await this.sources(), { count: SAMPLE_SIZE });
        if (this.info.configProblems?.length) view.problems.unshift(`idc.config.json cannot be used (defaults apply): ${this.info.configProblems.join('; ')}`);
        return view;
      },
      sample: async ({ count, seed, split }) => samplePatches(await this.sources(), { count, seed, split }),
    };
  }
}
