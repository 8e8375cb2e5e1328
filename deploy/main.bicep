// Everything the evaluation service needs in one resource group: the app identity, host storage,
// monitoring, the Durable Task Scheduler, the Python session pool and the Flex Consumption function
// app, with the identity granted exactly the data roles it uses. See deploy/README.md.

targetScope = 'resourceGroup'

@description('Short name used in every resource name (lowercase letters, digits, hyphens).')
@minLength(2)
@maxLength(12)
param baseName string = 'evalgate'

@description('Azure region for every resource. It must offer Flex Consumption, Durable Task Scheduler and session pools.')
param location string = resourceGroup().location

@description('Tags applied to every resource.')
param tags object = {}

@description('Instance memory in MB: 512, 2048 or 4096.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Most instances the app may scale out to (40 is the lowest value Flex allows).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Concurrent HTTP requests per instance before another instance is added.')
@minValue(1)
@maxValue(1000)
param httpPerInstanceConcurrency int = 16

@description('Always-ready instances for the http group. 0 scales to zero: orchestrations then advance only while requests keep an instance alive. 1 keeps the worker connected (billed around the clock).')
@minValue(0)
@maxValue(20)
param alwaysReadyInstances int = 0

@description('How long a submission waits for a decision before it expires (24h, 90s, PT24H, ...).')
param approvalTimeout string = '24h'

@description('Time limit on one execution of submitted code (the session pool stops at 220s).')
param executionTimeout string = '60s'

@description('Session pool data-plane API version the handler calls.')
@allowed([
  '2025-02-02-preview'
  '2024-02-02-preview'
])
param sessionPoolApi string = '2025-02-02-preview'

@description('Durable Task Scheduler SKU.')
@allowed([
  'Consumption'
  'Dedicated'
])
param schedulerSku string = 'Consumption'

@description('Addresses allowed to reach the scheduler. Flex instances have no fixed outbound address, so the default admits all; access is still gated by Entra RBAC.')
@minLength(1)
param schedulerIpAllowlist array = [
  '0.0.0.0/0'
]

@description('Task hub name.')
param taskHubName string = 'evalgate'

@description('Most Python sessions alive at once.')
@minValue(1)
@maxValue(600)
param sessionPoolMaxSessions int = 10

@description('Seconds an idle Python session lives before it is destroyed (300-3600).')
@minValue(300)
@maxValue(3600)
param sessionPoolCooldownSeconds int = 300

@description('Days Log Analytics keeps logs.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

@description('Client id of an Entra app registration for Easy Auth (approver identities); empty leaves Easy Auth off.')
param easyAuthClientId string = ''

var token = take(uniqueString(subscription().id, resourceGroup().id, baseName), 6)
var name = '${baseName}-${token}'
var storageName = toLower(take('st${replace(baseName, '-', '')}${token}', 24))
var deploymentContainerName = 'app-package-${token}'
var allTags = union(tags, {
  app: baseName
})

module identity 'modules/identity.bicep' = {
  name: 'identity'
  params: {
    name: 'id-${name}'
    location: location
    tags: allTags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    name: storageName
    location: location
    tags: allTags
    deploymentContainerName: deploymentContainerName
    principalId: identity.outputs.principalId
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    name: name
    location: location
    tags: allTags
    retentionInDays: logRetentionDays
    principalId: identity.outputs.principalId
  }
}

module scheduler 'modules/scheduler.bicep' = {
  name: 'scheduler'
  params: {
    name: 'dts-${name}'
    taskHubName: taskHubName
    location: location
    tags: allTags
    skuName: schedulerSku
    ipAllowlist: schedulerIpAllowlist
    principalId: identity.outputs.principalId
  }
}

module sessionPool 'modules/sessionpool.bicep' = {
  name: 'sessionPool'
  params: {
    name: 'pool-${name}'
    location: location
    tags: allTags
    maxConcurrentSessions: sessionPoolMaxSessions
    cooldownPeriodInSeconds: sessionPoolCooldownSeconds
    principalId: identity.outputs.principalId
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionApp'
  params: {
    name: 'func-${name}'
    planName: 'plan-${name}'
    location: location
    tags: allTags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    appInsightsConnectionString: monitoring.outputs.connectionString
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    httpPerInstanceConcurrency: httpPerInstanceConcurrency
    alwaysReadyInstances: alwaysReadyInstances
    schedulerConnectionString: 'Endpoint=${scheduler.outputs.endpoint};TaskHub=${scheduler.outputs.taskHubName};Authentication=ManagedIdentity;ClientID=${identity.outputs.clientId}'
    sessionPoolUrl: sessionPool.outputs.managementEndpoint
    approvalTimeout: approvalTimeout
    executionTimeout: executionTimeout
    sessionPoolApi: sessionPoolApi
    easyAuthClientId: easyAuthClientId
    easyAuthTenantId: tenant().tenantId
  }
}

@description('Name of the function app (for az functionapp commands).')
output functionAppName string = functionApp.outputs.name

@description('Base URL of the function app.')
output functionAppUrl string = 'https://${functionApp.outputs.defaultHostName}'

@description('Base URL of the HTTP API: POST {apiBaseUrl}/code, GET {apiBaseUrl}/code/{id}, POST {apiBaseUrl}/code/{id}/approval.')
output apiBaseUrl string = 'https://${functionApp.outputs.defaultHostName}/api'

@description('Durable Task Scheduler dashboard for the task hub.')
output schedulerDashboardUrl string = scheduler.outputs.dashboardUrl

@description('Durable Task Scheduler endpoint.')
output schedulerEndpoint string = scheduler.outputs.endpoint

@description('Session pool management endpoint (the app setting SESSION_POOL_URL).')
output sessionPoolEndpoint string = sessionPool.outputs.managementEndpoint

@description('Client id of the app identity.')
output identityClientId string = identity.outputs.clientId

@description('Application Insights component receiving the app logs.')
output appInsightsName string = monitoring.outputs.appInsightsName
