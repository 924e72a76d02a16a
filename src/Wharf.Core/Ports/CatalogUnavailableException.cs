namespace Wharf.Core.Ports;

/// <summary>
/// The catalog's database could not be reached, or went away while serving (connection refused or dropped, the
/// server shutting down or out of connections): a fault of the service, never of the request, and usually a passing
/// one. Answered as <c>503 storage_unavailable</c> with <c>Retry-After</c>. A write that failed so was not
/// acknowledged; when the failure hit its commit it may still have happened, and the client's retry finds it.
/// </summary>
public sealed class CatalogUnavailableException(string message, Exception innerException) : Exception(message, innerException);
