// Unit tests (src/__tests__/*.spec.ts) on JupyterLab's own jest setup (@jupyterlab/testing): ts-jest
// type-checks and compiles them with tsconfig.test.json, in a jsdom that has Node's fetch and Response.
// Nothing they load ships ES modules, so no babel config is needed; add @jupyterlab/testing's
// babel-config if a test ever imports one (e.g. @jupyterlab/ui-components).
const jestJupyterLab = require('@jupyterlab/testing/lib/jest-config');

module.exports = {
  ...jestJupyterLab(__dirname),
  automock: false,
  reporters: ['default'],
  testRegex: 'src/__tests__/.*\\.spec\\.ts$'
};
