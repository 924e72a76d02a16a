using System.Text.Json.Serialization;

namespace Wharf.Storage;

[JsonSerializable(typeof(IReadOnlyDictionary<string, string>))]
[JsonSerializable(typeof(IReadOnlyCollection<string>))]
[JsonSerializable(typeof(IReadOnlyList<string>))]
[JsonSerializable(typeof(IReadOnlyList<int>))]
[JsonSerializable(typeof(IReadOnlyList<Wharf.Core.Batches.BatchError>))]
internal sealed partial class StorageJsonContext : JsonSerializerContext;
