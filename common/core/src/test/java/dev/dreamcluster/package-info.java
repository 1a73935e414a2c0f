/**
 * Tests that span the repository rather than one package: {@link dev.dreamcluster.DocsLinksTest} checks
 * the relative links of README.md and docs/.
 */
package dev.dreamcluster;
