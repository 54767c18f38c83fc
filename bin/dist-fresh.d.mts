// Types for bin/dist-fresh.mjs (the bench loads the compiled server through it).
export declare const root: string;
export declare function distIsFresh(): boolean;
