import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Dialog, ICommandPalette, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStateDB } from '@jupyterlab/statedb';
import {
  LabIcon,
  checkIcon,
  codeCheckIcon,
  downloadIcon,
  inspectorIcon,
  runIcon,
  spreadsheetIcon,
  stopIcon,
  tableRowsIcon,
  textEditorIcon
} from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { checkDataset } from './api';
import { CATEGORY, FILE_BROWSER_COMMANDS, PALETTE_COMMANDS, addCommands } from './commands';
import { reportNode, reportTitle } from './health';
import { insertCells } from './insert';
import { DEFAULT_SETTINGS, FilePicker, IPanelSettings, TuningPanel } from './panel';
import { activateReattach } from './reattach';
import { IHealthReport } from './types';

const PANEL_ID = 'jupyter-tune-panel';
/** The file browser's items for data files: one selector per file type (a context menu selector takes no
 * commas): JupyterLab's jsonl and csv, and parquet (registered below when no other extension has). The
 * commands show only when the file's extension is one jt reads (.jsonl, not .ndjson). */
const DATA_FILE_SELECTORS = ['jsonl', 'csv', 'parquet'].map(
  type => `.jp-DirListing-item[data-isdir="false"][data-file-type="${type}"]`
);

// Material Design "tune" icon (Apache-2.0); jp-icon3 lets the theme colour it.
const tuneIcon = new LabIcon({
  name: 'jupyter-tune:tune',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">' +
    '<path class="jp-icon3" fill="#616161" d="M3 17v2h6v-2H3zM3 5v2h10V5H3zm10 16v-2h8v-2h-8v-2h-2v6h2zM7 9v2H3v2h4v2h2V9H7zm14 4v-2H11v2h10zm-6-4h2V7h4V5h-4V3h-2v6z"/>' +
    '</svg>'
});

/**
 * The file selected in the file browser, as a path the notebook's kernel reads: relative to the
 * current notebook's folder (the kernel's working directory), else to the folder the browser shows
 * (where a new notebook is created).
 */
function selectedFilePicker(browser: IDefaultFileBrowser, tracker: INotebookTracker): FilePicker {
  return () => {
    const item = browser.selectedItems().next();
    if (item.done || !item.value || item.value.type === 'directory') {
      return null;
    }
    const notebook = tracker.currentWidget?.context.path;
    const folder = notebook !== undefined ? PathExt.dirname(notebook) : browser.model.path;
    return PathExt.relative(folder, item.value.path);
  };
}

/** The folder the form's relative paths start from: the current notebook's (the kernel's working folder),
 * else the one the file browser shows (where a new notebook is created). */
function formFolder(browser: IDefaultFileBrowser | null, tracker: INotebookTracker): string {
  const notebook = tracker.currentWidget?.context.path;
  return notebook !== undefined ? PathExt.dirname(notebook) : (browser?.model.path ?? '');
}

/** The file selected in the file browser, relative to the server's root; null for none or a folder. */
function selectedFile(browser: IDefaultFileBrowser): string | null {
  const item = browser.selectedItems().next();
  return item.done || !item.value || item.value.type === 'directory' ? null : item.value.path;
}

/** A health report in a dialog; resolves at once (a command never waits for the dialog to close). */
function showReport(report: IHealthReport): void {
  const body = new Widget({ node: reportNode(report) });
  void showDialog({ title: reportTitle(report), body, buttons: [Dialog.okButton({ label: 'Close' })] });
}

/** The panel's settings as typed values (the registry checks them against schema/plugin.json). */
function panelSettings(settings: ISettingRegistry.ISettings): IPanelSettings {
  const composite = settings.composite as Partial<IPanelSettings>;
  return {
    pollInterval: Number(composite.pollInterval ?? DEFAULT_SETTINGS.pollInterval),
    defaultBaseModel: String(composite.defaultBaseModel ?? DEFAULT_SETTINGS.defaultBaseModel)
  };
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-tune:plugin',
  description: 'The Tuning side panel: insert tuning, evaluation and generation cells; follow jobs live.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ILayoutRestorer, ICommandPalette, IDefaultFileBrowser, ISettingRegistry, IStateDB],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    browser: IDefaultFileBrowser | null,
    registry: ISettingRegistry | null,
    state: IStateDB | null
  ) => {
    const panel = new TuningPanel(
      (cells, run, action) => insertCells(app, tracker, cells, run, action),
      browser ? selectedFilePicker(browser, tracker) : null,
      undefined,
      (id, args) => app.commands.execute(id, args),
      { state, formFolder: () => formFolder(browser, tracker) }
    );
    panel.id = PANEL_ID;
    panel.title.icon = tuneIcon;
    panel.title.caption = 'Tuning';
    app.shell.add(panel, 'right', { rank: 600 });
    restorer?.add(panel, PANEL_ID);

    addCommands(app.commands, {
      panel,
      icons: {
        tune: tuneIcon,
        evaluate: checkIcon,
        generate: textEditorIcon,
        test: runIcon,
        compare: tableRowsIcon,
        export: downloadIcon,
        view: inspectorIcon,
        cancel: stopIcon,
        check: codeCheckIcon
      },
      showPanel: () => app.shell.activateById(PANEL_ID),
      checkDataset,
      showReport,
      showError: (title, error) => void showErrorMessage(title, error as Error),
      formFolder: () => formFolder(browser, tracker),
      selectedFile: browser ? () => selectedFile(browser) : undefined
    });
    PALETTE_COMMANDS.forEach((command, rank) => palette?.addItem({ command, category: CATEGORY, rank }));
    activateReattach(app, tracker); // job views marked disconnected when their kernel goes (issue 38.5)
    if (browser) {
      if (!app.docRegistry.getFileType('parquet')) {
        app.docRegistry.addFileType({
          name: 'parquet',
          displayName: 'Parquet file',
          extensions: ['.parquet'],
          mimeTypes: ['application/vnd.apache.parquet'],
          fileFormat: 'base64',
          contentType: 'file',
          icon: spreadsheetIcon
        });
      }
      for (const selector of DATA_FILE_SELECTORS) {
        FILE_BROWSER_COMMANDS.forEach((command, i) => app.contextMenu.addItem({ command, selector, rank: 3 + i / 10 }));
      }
    }

    if (registry) {
      registry
        .load(plugin.id)
        .then(settings => {
          panel.configure(panelSettings(settings));
          settings.changed.connect(() => panel.configure(panelSettings(settings)));
        })
        .catch(reason => console.error('jupyter-tune: could not load the settings', reason));
    }
  }
};

export default plugin;
