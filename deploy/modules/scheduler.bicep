// The Durable Task Scheduler and the task hub the app's orchestrations live in. The scheduler takes
// no keys: the app's identity gets Durable Task Data Contributor on the task hub only.

@description('Scheduler name: 3-64 letters, digits and hyphens.')
@minLength(3)
@maxLength(64)
param name string

@description('Task hub name: 3-64 letters, digits and hyphens.')
@minLength(3)
@maxLength(64)
param taskHubName string

@description('Azure region.')
param location string

@description('Tags applied to the scheduler.')
param tags object

@description('Scheduler SKU. Consumption bills per operation; Dedicated reserves capacity units.')
@allowed([
  'Consumption'
  'Dedicated'
])
param skuName string

@description('Addresses (IPv4, IPv6 or CIDR) allowed to reach the scheduler. An empty list denies all traffic.')
@minLength(1)
param ipAllowlist array

@description('Principal id of the app identity, granted Durable Task Data Contributor on the task hub.')
param principalId string

// Durable Task Data Contributor: start, query and raise events on instances, and run the worker.
var dataContributorRoleId = '0ad04412-c4d5-4796-b79c-f76d14c8d402'

// Dedicated needs a capacity (units); Consumption takes none.
var dedicatedSku = {
  name: 'Dedicated'
  capacity: 1
}
var consumptionSku = {
  name: 'Consumption'
}

resource scheduler 'Microsoft.DurableTask/schedulers@2025-11-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    ipAllowlist: ipAllowlist
    sku: (skuName == 'Dedicated') ? dedicatedSku : consumptionSku
  }
}

resource taskHub 'Microsoft.DurableTask/schedulers/taskHubs@2025-11-01' = {
  parent: scheduler
  name: taskHubName
  properties: {}
}

resource dataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(taskHub.id, principalId, dataContributorRoleId)
  scope: taskHub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', dataContributorRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output endpoint string = scheduler.properties.endpoint
output taskHubName string = taskHub.name
output dashboardUrl string = taskHub.properties.dashboardUrl
