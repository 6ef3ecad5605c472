import type * as vscode from 'vscode';
import type * as W from '../../protocol/webview';
import * as P from '../../protocol/protocol';
import { buildGalleryPage, gradCamPaths, locateInGallery, type GalleryContext } from '../../core/views/gallery';
import { readEvaluateSettings } from '../../core/views/threshold';
import { IdcPanel, type PanelHandlers, type PanelHost } from './panel';

/**
 * Error gallery: one confusion-matrix cell at a threshold, most wrong first, paged as the page
 * scrolls. Patch and Grad-CAM files become webview URIs here (confined to the dataset and output
 * folders by imageUri()).
 */
export class GalleryPanel extends IdcPanel<'gallery'> {
  protected override readonly reloadAfter: readonly P.JobKind[] = ['evaluate'];

  constructor(panel: vscode.WebviewPanel, host: PanelHost, state: W.PanelState, info: P.WorkspaceInfo) {
    super('gallery', panel, host, state, info);
  }

  private context(evaluation: string | undefined, working?: number): GalleryContext {
    return { outputDir: this.info.outputDir, archive: this.info.archive, evaluations: this.info.evaluations, evaluation: evaluation ?? this.state.evaluation, working };
  }

  protected handlers(): PanelHandlers<'gallery'> {
    return {
      page: async ({ evaluation, ...q }) => {
        const settings = await readEvaluateSettings(this.folder);
        const page = buildGalleryPage(this.context(evaluation, settings?.threshold), q);
        if (!page) return null;
        this.state = { ...this.state, evaluation: page.evaluation };
        for (const it of page.items) {
          it.imageUri = it.image ? this.imageUri(it.image) ?? null : null;
          it.gradcamUri = it.gradcam ? this.imageUri(it.gradcam) ?? null : null;
        }
        return page;
      },
      gradcam: ({ evaluation, ids }) => {
        const paths = gradCamPaths(this.context(evaluation), ids);
        return Object.fromEntries(Object.entries(paths).map(([id, p]) => [id, p ? this.imageUri(p) ?? null : null]));
      },
      locate: async ({ evaluation, id, threshold, patient }) => {
        const t = threshold ?? (await readEvaluateSettings(this.folder))?.threshold;
        const ctx = this.context(evaluation);
        return locateInGallery(ctx, id, t, patient);
      },
    };
  }
}
