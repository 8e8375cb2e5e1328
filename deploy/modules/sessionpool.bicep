// The Container Apps dynamic session pool that runs submitted Python: Hyper-V isolated PythonLTS
// sessions with outbound network access disabled. The app's identity may execute code in it.

@description('Session pool name.')
param name string

@description('Azure region.')
param location string

@description('Tags applied to the pool.')
param tags object

@description('Most sessions alive at once; further requests wait or fail.')
@minValue(1)
@maxValue(600)
param maxConcurrentSessions int

@description('Seconds a session stays alive after its last call before it is destroyed.')
@minValue(300)
@maxValue(3600)
param cooldownPeriodInSeconds int

@description('Principal id of the app identity, granted Azure ContainerApps Session Executor on the pool.')
param principalId string

// Azure ContainerApps Session Executor: run code in (and so create) sessions of this pool.
var sessionExecutorRoleId = '0fb8eba5-a2bb-4abe-b1c1-49dfad359bb0'

resource pool 'Microsoft.App/sessionPools@2025-01-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    containerType: 'PythonLTS'
    poolManagementType: 'Dynamic'
    scaleConfiguration: {
      maxConcurrentSessions: maxConcurrentSessions
    }
    dynamicPoolConfiguration: {
      lifecycleConfiguration: {
        lifecycleType: 'Timed'
        cooldownPeriodInSeconds: cooldownPeriodInSeconds
      }
    }
    sessionNetworkConfiguration: {
      status: 'EgressDisabled'
    }
  }
}

resource sessionExecutor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(pool.id, principalId, sessionExecutorRoleId)
  scope: pool
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', sessionExecutorRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output name string = pool.name
output managementEndpoint string = pool.properties.poolManagementEndpoint
