/**
 * The {@code dreamcluster} command line (picocli): one class per subcommand. Bad input ends with one
 * {@code error:} line on stderr and exit status 2; nothing here prints a stack trace for user errors.
 */
package dev.dreamcluster.cli;
