/**
 * report: the study's tables (Markdown, CSV), findings.md, charts and forest plots (SVG),
 * overlay figures (PNG through our own encoder) and one self-contained HTML page, from
 * results.json; and the single-case viewer page (NiiVue inlined, viewer.ts). Imports only types from experiments; renders, never computes a metric or a test.
 */
export { crc32, decodePng, encodePng, pngDataUri, type RgbaImage } from './png.js';
export { studyTables, tableMarkdown, tableCsv, cellText, strategyLabel, pretrainedLabel, armLabel, armStrategyLabel, HIGHER_MARK, LOWER_MARK, MARK_NOTE, STRATEGY_LABELS, type StudyTable, type TableCell, type TableColumn } from './tables.js';
export { boxPlotSvg, lineChartSvg, barChartSvg, boxStats, quantile, escapeXml, type BoxGroup, type BoxStats, type LineSeries, type Bar } from './charts.js';
export { decodeOverlay, renderOverlay, lungWindow, scaleFactors, LUNG_WINDOW_HU, type DecodedOverlay, type RgbImage } from './overlay.js';
export { reportHtml, studyCharts, tableHtml, shortArmLabel, type ReportPage, type OverlayFigure, type OverlayPanel, type ReportCharts } from './html.js';
export { overlayViewerCases, readStudyResults, viewerPageOf, writeTables, writeReport, type WrittenReport } from './writeReport.js';
export { forestPlotSvg, type ForestRow } from './forest.js';
export { findingsMarkdown, verdictSentence, comparisonLabel } from './findings.js';
export { niivueBundle, summaryHtml, viewerHtml, VIEWER_LABEL_RGB, type ViewerMask, type ViewerPage, type ViewerVolume } from './viewer.js';
