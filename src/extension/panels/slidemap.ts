import type * as vscode from 'vscode';
import type * as W from '../../protocol/webview';
import * as P from '../../protocol/protocol';
import { evaluationId } from '../../core/views/ids';
import { buildSlideMapView, releaseSlideMapCache } from '../../core/views/slidemap';
import { IdcPanel, type PanelHandlers, type PanelHost } from './panel';

/**
 * Slide map: one patient's slide rebuilt from its patches with ground truth, predicted probability
 * and FN/FP outlines (drawn by the page at its threshold). The layer PNGs are drawn here on demand
 * (pure Node, no TF.js, no native module) into the evaluation's slidemaps/layers/ folder.
 */
export class SlideMapPanel extends IdcPanel<'slidemap'> {
  protected override readonly reloadAfter: readonly P.JobKind[] = ['evaluate', 'cv'];

  constructor(panel: vscode.WebviewPanel, host: PanelHost, state: W.PanelState, info: P.WorkspaceInfo) {
    super('slidemap', panel, host, state, info);
    this.onDidDispose(() => releaseSlideMapCache());
  }

  protected handlers(): PanelHandlers<'slidemap'> {
    return {
      load: async ({ evaluation, patient, threshold }) => {
        const list = this.info.evaluations;
        if (!list.length) return null;
        const wanted = evaluation ?? this.state.evaluation;
        const picked = list.find((e) => evaluationId(e) === wanted) ?? list.at(-1)!;
        const id = evaluationId(picked);
        const view = await buildSlideMapView({
          evaluation: id, dir: picked.dir, evaluations: list.map(evaluationId),
          outputDir: this.info.outputDir, archive: this.info.archive, cacheDir: await this.cacheDir(),
        }, { patient, threshold });
        if (wanted && wanted !== id) view.warnings.unshift(`Evaluation ${wanted} is gone; showing ${id}.`);
        this.state = { ...this.state, evaluation: id };
        return view;
      },
    };
  }
}
