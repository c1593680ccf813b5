/**
 * OHIF configuration of the regional archive (template: Archive.Viewer.AppConfig).
 *
 * The archive serves this file at <Viewer.Root>app-config.js after a short prelude that sets
 * window.ARCHIVE_VIEWER from its settings:
 *   root             the viewer's URL root, e.g. "/ohif/" or "/t/<tenant>/ohif/"
 *   routerBasename   the same without the trailing slash (React Router's base)
 *   dicomWebRoot     the archive's DICOMweb root on the same origin, e.g. "/dicom-web"
 *   qidoRoot         the archive's QIDO-RS route that decodes query values, "/api/dicom-web"
 *   defaultLanguage  OHIF language for a browser that has not chosen one ("zh" or "en-US")
 * Every key is explained in ohif-config/README.md. The OHIF reference for the keys is the
 * "Configuration" page of the OHIF 3 documentation (version in ohif-config/OHIF_VERSION).
 */

/** @type {AppTypes.Config} */
window.config = (function (archive) {
  // Same origin as the page: no CORS, and the archive's cookies/authentication apply.
  const dicomWeb = window.location.origin + archive.dicomWebRoot;
  // Searches go through the archive's decoding route: Orthanc 1.10 hands the DICOMweb plugin
  // percent-encoded query values, so "张*" or "includefield=00081030,00080060" would not match.
  const qido = window.location.origin + archive.qidoRoot;

  return {
    name: 'regional-archive',
    routerBasename: archive.routerBasename,
    extensions: [],
    modes: [],
    customizationService: {},
    showStudyList: true,
    // More web workers decode faster; OHIF advises at most 3 on some Windows systems.
    maxNumberOfWebWorkers: 3,
    // DICOMweb is same-origin: no cross-origin warning needed.
    showWarningMessageForCrossOrigin: false,
    showCPUFallbackMessage: true,
    showLoadingIndicator: true,
    // MPR needs evenly spaced slices; do not build volumes from irregular series.
    strictZSpacingForVolumeViewport: true,
    groupEnabledModesFirst: true,
    // OHIF is not a certified medical device: its "investigational use" notice stays, and each
    // user acknowledges it once per 30 days.
    investigationalUseDialog: { option: 'configure', days: 30 },
    maxNumRequests: {
      interaction: 100,
      thumbnail: 75,
      prefetch: 25,
    },
    showErrorDetails: 'dev',
    defaultDataSourceName: 'dicomweb',
    dataSources: [
      {
        namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
        sourceName: 'dicomweb',
        configuration: {
          friendlyName: 'Regional archive',
          name: 'archive',
          qidoRoot: qido,
          wadoRoot: dicomWeb,
          // Orthanc serves WADO-URI at /wado, not below /dicom-web; OHIF only uses it for
          // "wadouri:" image ids, which this configuration does not produce.
          wadoUriRoot: dicomWeb,
          // Orthanc's DICOMweb plugin honours includefield=, "*" wildcards in QIDO matching,
          // and the study-level /metadata that lazy loading needs.
          qidoSupportsIncludeField: true,
          supportsWildcard: true,
          supportsFuzzyMatching: false,
          enableStudyLazyLoad: true,
          imageRendering: 'wadors',
          thumbnailRendering: 'wadors',
          // Orthanc implements neither Reject Note (KOS) deletes nor a STOW button's needs
          // beyond plain STOW-RS; ingest goes through DICOM or STOW-RS by integrators.
          supportsReject: false,
          dicomUploadEnabled: false,
          omitQuotationForMultipartRequest: true,
          bulkDataURI: { enabled: true },
        },
      },
    ],
    httpErrorHandler: error => {
      console.warn('DICOMweb request failed', error && error.status);
    },
  };
})(window.ARCHIVE_VIEWER);
