// Implements gRPC server reflection (v1 and v1alpha) from the generated file descriptors, so buf curl and grpcurl need no --schema.
import { create, createRegistry, type DescFile, type Registry, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, type ConnectRouter } from "@connectrpc/connect";
import * as v1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";

// The request and response oneofs are identical in v1 and v1alpha; these shapes fit both.
type Question =
  | { case: "fileByFilename" | "fileContainingSymbol" | "allExtensionNumbersOfType" | "listServices"; value: string }
  | { case: "fileContainingExtension"; value: { containingType: string; extensionNumber: number } }
  | { case: undefined; value?: undefined };

type Answer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

/**
 * Registers grpc.reflection.v1 and v1alpha `ServerReflection` on the router. Answers cover
 * `files`, their transitive imports, the reflection protocol itself, and every service the
 * router serves when the first question arrives (so routes registered later are included).
 */
export function registerReflection(router: ConnectRouter, files: readonly DescFile[]): void {
  let index: Index | undefined;
  const lookup = () => {
    index ??= createIndex([
      ...files,
      v1.file_grpc_reflection_v1_reflection,
      v1alpha.file_grpc_reflection_v1alpha_reflection,
      ...router.handlers.map((h) => h.service.file),
    ]);
    return index;
  };
  router.service(v1.ServerReflection, {
    async *serverReflectionInfo(requests) {
      for await (const req of requests) {
        yield create(v1.ServerReflectionResponseSchema, {
          validHost: req.host,
          originalRequest: req,
          messageResponse: answer(lookup(), req.messageRequest),
        });
      }
    },
  });
  router.service(v1alpha.ServerReflection, {
    async *serverReflectionInfo(requests) {
      for await (const req of requests) {
        yield create(v1alpha.ServerReflectionResponseSchema, {
          validHost: req.host,
          originalRequest: req,
          messageResponse: answer(lookup(), req.messageRequest),
        });
      }
    },
  });
}

interface Index {
  /** By proto file name, e.g. "veil/v1/secret.proto"; includes every transitive import. */
  readonly files: ReadonlyMap<string, DescFile>;
  readonly symbols: Registry;
  readonly services: readonly string[];
  readonly encoded: Map<string, Uint8Array>;
}

function createIndex(roots: readonly DescFile[]): Index {
  const files = new Map<string, DescFile>();
  const services = new Set<string>();
  const visit = (file: DescFile) => {
    if (files.has(file.proto.name)) return;
    files.set(file.proto.name, file);
    file.dependencies.forEach(visit);
  };
  for (const file of roots) {
    visit(file);
    for (const service of file.services) services.add(service.typeName);
  }
  return {
    files,
    symbols: createRegistry(...files.values()),
    services: [...services].sort(),
    encoded: new Map(),
  };
}

function answer(index: Index, question: Question): Answer {
  switch (question.case) {
    case "listServices":
      return { case: "listServicesResponse", value: { service: index.services.map((name) => ({ name })) } };
    case "fileByFilename": {
      const file = index.files.get(question.value);
      return file ? withImports(index, file) : notFound(`file "${question.value}"`);
    }
    case "fileContainingSymbol": {
      const file = fileOfSymbol(index, question.value.replace(/^\./, ""));
      return file ? withImports(index, file) : notFound(`symbol "${question.value}"`);
    }
    case "fileContainingExtension":
      // Veil declares no extensions.
      return notFound(`extension ${question.value.extensionNumber} of "${question.value.containingType}"`);
    case "allExtensionNumbersOfType": {
      const name = question.value.replace(/^\./, "");
      return index.symbols.getMessage(name)
        ? { case: "allExtensionNumbersResponse", value: { baseTypeName: name, extensionNumber: [] } }
        : notFound(`message "${question.value}"`);
    }
    default:
      return { case: "errorResponse", value: { errorCode: Code.InvalidArgument, errorMessage: "empty request" } };
  }
}

/** Services, messages, enums and extensions by name; methods as `Service.Method`. */
function fileOfSymbol(index: Index, name: string): DescFile | undefined {
  const desc = index.symbols.get(name);
  if (desc) return desc.file;
  const dot = name.lastIndexOf(".");
  const service = dot > 0 ? index.symbols.getService(name.slice(0, dot)) : undefined;
  return service?.methods.some((m) => m.name === name.slice(dot + 1)) ? service.file : undefined;
}

/**
 * The file first, then every transitive import. Sending all of them each time (rather
 * than only those not yet sent on this stream) keeps the stream stateless; they are small.
 */
function withImports(index: Index, file: DescFile): Answer {
  const order: DescFile[] = [];
  const seen = new Set<string>();
  const visit = (f: DescFile) => {
    if (seen.has(f.proto.name)) return;
    seen.add(f.proto.name);
    order.push(f);
    f.dependencies.forEach(visit);
  };
  visit(file);
  return { case: "fileDescriptorResponse", value: { fileDescriptorProto: order.map((f) => encode(index, f)) } };
}

function encode(index: Index, file: DescFile): Uint8Array {
  let bytes = index.encoded.get(file.proto.name);
  if (!bytes) {
    bytes = toBinary(FileDescriptorProtoSchema, file.proto);
    index.encoded.set(file.proto.name, bytes);
  }
  return bytes;
}

function notFound(what: string): Answer {
  return { case: "errorResponse", value: { errorCode: Code.NotFound, errorMessage: `${what} not found` } };
}
