/** The program's version; scripts/build.sh may override it with $ECS_VERSION at build time. */
export const VERSION = "0.1.0";
